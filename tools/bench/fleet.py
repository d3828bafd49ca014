"""Lab 09's replica storm, timed: three copies of a release boot at once, each
running `flask db upgrade` first, on a database one data migration behind; the
naive way (no lock), with an advisory lock in env.py, and with the migration run
once as a release step before the copies start. As in the lab, the copies that
upgrade at boot start while a report reads `deals` (`boot(during_report=...)`),
so the race happens on every run, whatever the machine's speed; their time to
serve includes that report (it ends once every copy waits for a lock). For each: the copies that
failed to boot, the copies that ran the revision (duplicate work), and the time
from the deploy's start until every copy that boots serves. One run each.

    .venv/bin/python -m tools.bench --only-fleet
"""
import subprocess
import time
import types

from labapp.live import appserver
from labapp.runtime import labs, workspace
from tools import scenarios
from tools.bench.measure import child_env, scratch_database

DEALS = 300_000
LOCKED = """        with context.begin_transaction():
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(20260901)")
            context.run_migrations()"""
PLAIN = """        with context.begin_transaction():
            context.run_migrations()"""


def _storm(tmp, how):
    """(failed, ran, seconds until every booting copy serves) for one way."""
    with scratch_database(f"bench_fleet_{how.replace(' ', '_')}") as (name, url):
        spec = labs.LabSpec("benchfleet", "-", "-", migrations=True, data=True)
        lab = types.SimpleNamespace(workspace=workspace.build(tmp / f"fleet-{how}", spec), url=url)
        env = child_env(LABAPP_DATABASE=name)
        try:
            for args in (["db", "upgrade"], ["loaddata"]):
                subprocess.run(["flask", *args], cwd=lab.workspace, env=env, check=True,
                               capture_output=True)
            subprocess.run(["flask", "shell"], cwd=lab.workspace, env=env, check=True,
                           capture_output=True, text=True, input=(
                "from labapp import db; import sqlalchemy as sa\n"
                "db.session.execute(sa.text(\"INSERT INTO deals (contact_id, title, amount, currency)"
                f" SELECT 1 + i % 6, 'Deal ' || i, i, 'USD' FROM generate_series(1, {DEALS}) i\"))\n"
                "db.session.commit()\n"))
            revision = lab.workspace / "migrations" / "versions" / "0002_deal_amount_cents.py"
            revision.write_text(scenarios.amount_cents_revision())
            env_py = lab.workspace / "migrations" / "env.py"
            if how == "advisory lock":
                env_py.write_text(env_py.read_text().replace(PLAIN, LOCKED))
            start = time.monotonic()
            if how == "release step":
                subprocess.run(["flask", "db", "upgrade"], cwd=lab.workspace, env=env, check=True,
                               capture_output=True)
                appserver.release(lab, "v2")
            else:
                appserver.release(lab, "v2", migrations=True)
            # the lab's storm: the copies boot while a report reads deals, which ends once
            # every copy's migration waits for a lock, so every copy has read alembic_version
            # before any commits (the race is certain, not luck); a release step has no storm
            upgrade = how != "release step"
            boots = appserver.boot(lab, "v2", 3, upgrade=upgrade,
                                   during_report="deals" if upgrade else None)
            served = [b.ended for b in boots if b.ok]
            return (sum(not b.ok for b in boots), sum(bool(b.ran) for b in boots),
                    (max(served) - start) if served else float("nan"))
        finally:
            appserver.stop_all(lab.workspace)


def bench_fleet(table, tmp):
    results = {how: _storm(tmp, how) for how in ("naive", "advisory lock", "release step")}
    notes = "; ".join(f"{how}: {failed} of 3 failed to boot, {ran} ran 0002, the {3 - failed} that "
                      f"boot serve after {s:.1f} s" for how, (failed, ran, s) in results.items())
    table.row(f"live: replica storm, 3 copies, {DEALS // 1000}k rows", results["advisory lock"][2],
              f"time until every copy serves, locked; {notes}")
