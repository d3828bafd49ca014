"""Learner namespaces: a named learner's databases carry their name, so a room
can share one PostgreSQL server (labapp.server.learners).

The slow test runs one lab for two learners at the same time against one
server (a private embedded one, reached through DATABASE_URL as a room's
server would be) with strict nbval, beside a third learner's database that
must come out untouched.
"""
import os
import re
import shutil
import subprocess
import sys

import pytest

from helpers import ROOT, open_folder, rows, unique_name
from labapp.runtime import lab, labs
from labapp.server import config, database, learners
from labapp.errors import LabError
from notebook_outputs import sanitize
from tools import sanitize as sanitize_cfg
from tools import scenarios


def test_clean_names_are_safe_and_short():
    assert learners.clean("alice") == "alice"
    assert learners.clean("t1234a") == "t1234a"
    for raw in ("Alice", "jane.doe@example.com", "Zoë Müller", "a__b", "_x", "DROP TABLE;--",
                "x" * 200, "42"):
        name = learners.clean(raw)
        assert re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)*", name), (raw, name)
        assert len(name) <= learners.MAX_LENGTH


def test_two_different_names_never_clean_to_one():
    raws = ["alice", "Alice", "ALICE", "a.b", "a_b", "a-b", "a b", "a__b", "x" * 30, "x" * 31,
            "jane.doe@example.com", "jane.doe@example.org", "?", "!"]
    cleaned = [learners.clean(raw) for raw in raws]
    assert len(set(cleaned)) == len(raws), dict(zip(raws, cleaned, strict=True))


def test_every_database_of_every_lab_fits_postgres_identifiers():
    longest = learners.clean("a-very-long-name-from-a-single-sign-on-provider@example.com")
    for spec in labs.LABS:
        for _, solutions in spec.copies():
            for suffix in ("", *spec.more_databases):
                name = spec.database(solutions, suffix, longest)
                assert name.startswith(longest + "__lab") and len(name.encode()) <= 63, name
                assert learners.owner(name) == longest
    assert labs.get("lab03")[0].database(True, "_replay", "alice") == "alice__lab03_solutions_replay"


def test_a_name_over_the_limit_is_a_clear_error():
    with pytest.raises(LabError, match="longer than PostgreSQL's 63 bytes"):
        learners.namespaced("lab03_" + "x" * 40, "a" * 24)


def test_the_sanitize_rule_gives_back_the_stored_form():
    """One rule in tests/sanitize.cfg: what a learner's run prints, less their name."""
    for text in ("Created database 'alice__lab01'.", "Lab lab01: no database yet 'alice__lab01'",
                 "LABAPP_DATABASE=jane_doe_3f2a9c__lab03_solutions_replay flask db upgrade",
                 "<td>t123a__lab00</td>", "postgresql t9__lab03_solutions"):
        assert "__lab" not in sanitize(text), text
    assert sanitize("Created database 'alice__lab01'.") == "Created database 'lab01'."
    assert sanitize("a__b and lab01__x stay") == "a__b and lab01__x stay"


def test_the_learner_comes_from_the_hub_or_the_kit_variable(monkeypatch):
    spec, _ = labs.get("lab02")
    monkeypatch.delenv("LABAPP_LEARNER", raising=False)
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    assert lab.Lab(spec).database == "lab02"
    monkeypatch.setenv("JUPYTERHUB_USER", "Bob.Smith")
    assert lab.Lab(spec, solutions=True).database == learners.clean("Bob.Smith") + "__lab02_solutions"
    monkeypatch.setenv("LABAPP_LEARNER", "carol")  # an explicit name wins
    assert lab.Lab(spec).sibling("_x").database == "carol__lab02_x"


def test_a_learners_database_admits_only_its_owner(monkeypatch, db_name):
    """On PostgreSQL the kit revokes CONNECT from PUBLIC on a named learner's databases
    (tests/test_room.py shows a second learner's role is then refused)."""
    if config.normalize_url(config.database_url(db_name)).get_backend_name() != "postgresql":
        pytest.skip("PostgreSQL only")
    if not os.environ.get("DATABASE_URL"):  # a named learner's embedded server is their own:
        from labapp.server import pgserver           # stay on this one

        monkeypatch.setenv("LABAPP_PGDATA", str(pgserver.data_dir()))
    monkeypatch.setenv("LABAPP_LEARNER", unique_name("t"))
    url = config.database_url(db_name + "_own")
    learners.create_database(url)
    try:
        [(acl,)] = rows(config.database_url(db_name),
                        "SELECT datacl::text FROM pg_database WHERE datname = :n", n=db_name + "_own")
        assert acl and not re.search(r"(^|[{,])=[^,}]*c", acl), acl  # PUBLIC lost CONNECT
    finally:
        database.drop_database(url, missing_ok=True)


# -- two learners at once on one server -----------------------------------------

@pytest.fixture
def private_server():
    """A private embedded server, reached as a room's server is: through DATABASE_URL."""
    top = open_folder("lns-")
    env = scenarios.environment(scenarios.KIT_SETTINGS, LABAPP_PGDATA=top / "pg")
    url = subprocess.run([sys.executable, "-c", "from labapp.server import pgserver; pgserver.ensure_running(); "
                          "print(pgserver.database_url('postgres'))"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    yield top, url
    subprocess.run([sys.executable, "-c", "from labapp.server import pgserver; pgserver.stop()"],
                   cwd=ROOT, env=env, capture_output=True, timeout=60)
    shutil.rmtree(top, ignore_errors=True)


def learner_run(top, name, url, notebooks):
    """Strict nbval of `notebooks` for learner `name` in their own copy of notebooks/."""
    home = top / name
    shutil.copytree(ROOT / "notebooks", home / "notebooks",
                    ignore=shutil.ignore_patterns("workspaces", ".ipynb_checkpoints"))
    (home / "pytest.ini").write_text("[pytest]\n")  # not the kit's config: only these notebooks
    env = scenarios.environment(scenarios.KIT_SETTINGS, scenarios.PYTEST_RUN, DATABASE_URL=url,
                                LABAPP_LEARNER=name)
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval",
         "--nbval-current-env", "--nbval-sanitize-with",
         str(sanitize_cfg.write(home / "sanitize.cfg", home / "notebooks")),
         *[f"notebooks/{n}" for n in notebooks]],
        cwd=home, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_two_learners_run_one_lab_at_once_on_one_server(private_server):
    top, url = private_server
    tag = f"t{os.getpid()}"
    alice, bob, carol = f"{tag}a", f"{tag}b", f"{tag}c"
    # carol finished lab 01 earlier: her database must survive the others' setup cells
    carols = config.normalize_url(url).set(database=f"{carol}__lab01_solutions").render_as_string(False)
    database.create_database(carols)
    rows(carols, "CREATE TABLE finished (who text); INSERT INTO finished VALUES ('carol')")

    books = ["solutions/01-First-Migration.ipynb", "solutions/03-Production-Branch-Replay.ipynb"]
    runs = {name: learner_run(top, name, url, books) for name in (alice, bob)}
    outputs = {name: proc.communicate(timeout=900)[0] for name, proc in runs.items()}
    for name, proc in runs.items():
        assert proc.returncode == 0, f"{name}:\n{outputs[name][-4000:]}"
        assert re.search(r"\b\d+ passed\b", outputs[name].splitlines()[-1]), outputs[name][-500:]

    assert rows(carols, "SELECT who FROM finished") == [("carol",)]
    names = {n for (n,) in rows(url, "SELECT datname FROM pg_database WHERE datname LIKE :p",
                                p=f"{tag}%")}
    for name in (alice, bob):
        mine = {n for n in names if learners.owner(n) == name}
        # lab 03 drops its _dev database at the end; its replay copy stays
        assert mine == {f"{name}__lab01_solutions", f"{name}__lab03_solutions",
                        f"{name}__lab03_solutions_replay"}, names
        lab01 = config.normalize_url(url).set(database=f"{name}__lab01_solutions")
        # lab 01's solution ends with its exercise 3 revision
        assert rows(lab01.render_as_string(False), "SELECT version_num FROM alembic_version") == [("0005",)]
    assert names == {f"{n}__{d}" for n in (alice, bob)
                     for d in ("lab01_solutions", "lab03_solutions", "lab03_solutions_replay")} | {
        f"{carol}__lab01_solutions"}
    assert not [n for (n,) in rows(url, "SELECT datname FROM pg_database") if n.startswith("lab0")], \
        "a database without a learner's name was created"


def test_outputs_are_compared_as_nbval_compares_them():
    """tests/notebook_outputs.py (the hub test's judge): sanitized, streams merged."""
    from notebook_outputs import difference

    stored = [{"output_type": "stream", "name": "stdout", "text": "Created database 'lab01'.\r\n"}]
    split = [{"output_type": "stream", "name": "stdout", "text": "Created database "},
             {"output_type": "stream", "name": "stdout", "text": "'alice__lab01'.\r\n"}]
    assert difference(stored, split) is None
    assert difference(stored, [{**stored[0], "text": "Created database 'lab02'.\r\n"}])
    assert difference(stored, stored + [{"output_type": "error", "ename": "E", "evalue": "x",
                                         "traceback": []}])
