"""A real JupyterHub with the kit's config (tools/hub/jupyterhub_config.py) and
the pinned configurable-http-proxy, on loopback ports: three learners run
lab 01 and lab 05 at the same time through it, as JupyterLab does (sessions
API + kernel websockets), and every output must match the stored one under
nbval's sanitize rules. Slow (CI=true runs it), in both room modes:

* embedded: each learner's own embedded PostgreSQL, in their own home;
* shared: one PostgreSQL for the room (the machine's PostgreSQL 15, through
  LABAPP_ROOM_DATABASE_URL and Spawner.environment), learners namespaced.

After the hub's SIGTERM no process of the room is left: proxy, servers,
kernels, and no learner's PostgreSQL.
"""
import asyncio
import os
import shutil
import tempfile
from pathlib import Path

import psycopg2
import pytest

from notebook_outputs import difference
from tools.hub import driver

pytestmark = pytest.mark.slow

SHARED = "postgresql://postgres@127.0.0.1:5432/postgres"  # the machine's PostgreSQL 15
LABS = ("solutions/01-First-Migration.ipynb", "solutions/05-Duplicate-Enum-ContactEventStatus.ipynb")


def shared_server_answers():
    try:
        psycopg2.connect(SHARED, connect_timeout=3).close()
        return True
    except psycopg2.OperationalError:
        return False


@pytest.fixture(scope="module", autouse=True)
def proxy():
    driver.ensure_proxy()


def drop_databases_of(prefix):
    conn = psycopg2.connect(SHARED, connect_timeout=5)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (prefix + "%__lab%",))
        for (name,) in cur.fetchall():
            cur.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    conn.close()


async def room(hub, names):
    learners = await asyncio.gather(*(hub.learner(name) for name in names))
    running = {}

    async def work(learner):
        results = []
        for notebook in LABS:
            cells = await learner.run(notebook)
            results.append((notebook, cells))
            if notebook == LABS[0]:
                running[learner.name] = driver.postgres_processes(driver.pgdata_of(learner.home, learner.name))
        return results

    return learners, running, await asyncio.gather(*(work(learner) for learner in learners))


@pytest.mark.parametrize("mode", ["embedded", "shared"])
def test_three_learners_run_labs_01_and_05_at_once_through_the_hub(mode):
    if mode == "shared" and not shared_server_answers():
        pytest.skip("no PostgreSQL on 127.0.0.1:5432 for the shared mode")
    tag = f"t{os.getpid()}{mode[0]}"
    names = [f"{tag}{i}" for i in (1, 2, 3)]
    state = Path(tempfile.mkdtemp(prefix="lhub-", dir="/tmp"))
    state.chmod(0o755)
    hub = driver.Hub(state, room_url=SHARED if mode == "shared" else None)
    try:
        with hub:
            learners, running, results = asyncio.run(room(hub, names))
            log = hub.log_tail()
        wrong = []
        for learner, runs in zip(learners, results, strict=True):
            for notebook, cells in runs:
                assert cells, notebook
                for cell in cells:
                    if "nbval-ignore-output" in cell.tags:
                        continue
                    diff = difference(cell.stored, cell.outputs, learner.home / "notebooks")
                    if diff:
                        wrong.append(f"{learner.name} {notebook} cell {cell.index}: {diff[:400]}")
        assert not wrong, "\n".join(wrong[:10]) + f"\n... {len(wrong)} cells wrong\n{log}"

        for name in names:  # each learner's labs ran in their own home and databases
            assert (hub.home(name) / "notebooks" / "workspaces" / "lab05_solutions"
                    / "migrations" / "versions" / "0004_add_event_status_changes.py").exists()
        if mode == "embedded":  # each learner had a server of their own, in their home
            assert all(running[name] for name in names), running
            pgdatas = {driver.pgdata_of(hub.home(name), name) for name in names}
            assert len(pgdatas) == 3 and all(str(hub.home(n)) in str(driver.pgdata_of(hub.home(n), n))
                                             for n in names), pgdatas
        else:
            assert not any(running.values()), f"an embedded server started in shared mode: {running}"
            conn = psycopg2.connect(SHARED, connect_timeout=5)
            with conn.cursor() as cur:
                cur.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (tag + "%",))
                found = {n for (n,) in cur.fetchall()}
            conn.close()
            # lab 05 keeps its _fresh sibling (the empty database it upgrades from base to head)
            dbs = ("lab01_solutions", "lab05_solutions", "lab05_solutions_fresh")
            assert found == {f"{n}__{db}" for n in names for db in dbs}

        assert hub.leftovers() == [], "processes outlived the hub"
    finally:
        if hub.process and hub.process.poll() is None:
            hub.stop()
        if mode == "shared":
            drop_databases_of(tag)
        for name in names:  # only if the hub's post-stop hook failed: never leave one behind
            for proc in driver.postgres_processes(driver.pgdata_of(hub.home(name), name)):
                proc.kill()
        hub.remove_accounts()
        shutil.rmtree(state, ignore_errors=True)
