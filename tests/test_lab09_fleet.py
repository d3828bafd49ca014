"""Lab 09's deploy day: the claims its prose makes about copies of the app, on the
real server, with its own revisions (tests/chains/lab09.patch).

* Three copies that each run `flask db upgrade` at boot on a database one
  revision behind (a data migration), started while a report
  reads `deals` (so every copy reads alembic_version before any can commit: the
  race is certain, whatever the machine's speed), all start the revision; one
  commits it and serves, the other two fail to boot with `DuplicateColumn`, and
  their line says another session moved alembic_version. The work is done once.
* With `pg_advisory_xact_lock` in env.py (the chain's env.py), all three serve:
  one runs the revision, the other two wait for its lock (pg_locks says so) and
  then find nothing to do. Taken with `pg_try_advisory_xact_lock`, the lock does
  not wait, and two copies fail to boot again.
* Run once as a release step, the revision is done before the copies start;
  copies started without `--upgrade` run no revision. A copy asked to upgrade
  from a release without migrations/ gets a one-line error.
* A session idle in transaction blocks an upgrade forever (no lock_timeout);
  pg_blocking_pids names it; pg_terminate_backend lets the upgrade finish.
* The database defaults end what they should: `statement_timeout` turns the
  app's read behind a held ACCESS EXCLUSIVE into an HTTP 500 (QueryCanceled);
  `idle_in_transaction_session_timeout` ends the idle session.
* env.py's own `lock_timeout` (100 ms, lab 07's retries, 15 attempts): a lock
  held past the first attempt (the retry's warning is out) but released within
  the retries lets a later attempt through, the revision applied once; a lock
  held past every attempt makes the upgrade give up with one line, nothing
  applied.
* Old code meets new data: a release whose model maps a column fails once
  the column is dropped (UndefinedColumn); `flask db downgrade` of that drop
  brings the column back empty.
"""
import time
import types
import urllib.error
import urllib.request

import psutil
import pytest
import sqlalchemy as sa

from helpers import alembic_versions, column_names, flask_in, postgres_only, rows
from labapp.commands import outcome
from labapp.errors import LabError
from labapp.live import appserver, traffic
from labapp.server import processes
from tools import scenarios

pytestmark = [postgres_only,
              pytest.mark.filterwarnings("ignore:'get_engine' is deprecated:DeprecationWarning")]

DEALS = 300_000
FEW = 1_000  # where only a lock's wait matters (a race too: the report makes it certain)
VERSIONS = "migrations/versions"
LOCK = 'connection.execute(sa.text("SELECT pg_advisory_xact_lock(20260901)"))'


def fleet(chain, db_url, upto="0002", env_py=None, deals=DEALS):
    """Lab 09's workspace with revisions up to `upto` only, the database at 0001
    with `deals` deals (many where a fill must take a while; few where only a lock's
    wait matters, or a race that a report makes certain); `env_py`: a function that
    changes env.py's text. Returns the object appserver's functions take as a lab."""
    ws = chain("lab09")
    for revision in sorted((ws / VERSIONS).glob("0*.py")):
        if revision.name[:4] > upto:
            revision.unlink()
    if env_py:
        path = ws / "migrations" / "env.py"
        path.write_text(env_py(path.read_text()))
    flask_in(ws, "db", "upgrade", "0001", check=True)
    flask_in(ws, "loaddata", check=True)
    rows(db_url, "INSERT INTO deals (contact_id, title, amount, currency)"
                 " SELECT 1 + i % 6, 'Deal ' || i, i, 'USD' FROM generate_series(1, :n) i", n=deals)
    vacuum(db_url)
    return types.SimpleNamespace(workspace=ws, url=db_url)


def vacuum(url):
    """VACUUM ANALYZE deals now, so that autovacuum, started by the rows just written,
    is not the session a test's ALTER waits for (it gives way only after deadlock_timeout)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("VACUUM ANALYZE deals")
    finally:
        engine.dispose()


def without_timeouts(text):
    """env.py as section 1 has it: without section 3's SET LOCAL timeouts."""
    lines = text.splitlines(keepends=True)
    assert sum("SET LOCAL" in line for line in lines) == 2, "the chain's env.py sets two timeouts"
    return "".join(line for line in lines if "SET LOCAL" not in line)


def without_lock(text):
    """env.py as section 1 has it: no advisory lock, no timeouts."""
    assert LOCK in text, "the chain's env.py takes the advisory lock"
    return without_timeouts(text).replace(LOCK, "pass")


@pytest.fixture
def stop_servers():
    labs = []
    yield labs.append
    for lab in labs:
        appserver.stop_all(lab.workspace)


def cents_filled_once(url):
    """Every deal's amount_cents is its amount in cents."""
    return rows(url, "SELECT count(*) FROM deals WHERE amount_cents IS DISTINCT FROM amount * 100")[0][0] == 0


def test_copies_that_each_upgrade_at_boot_race_and_two_fail(chain, db_url, stop_servers):
    lab = fleet(chain, db_url, env_py=without_lock, deals=FEW)
    stop_servers(lab)
    appserver.release(lab, "v2", migrations=True)
    boots = appserver.boot(lab, "v2", 3, upgrade=True, during_report="deals")
    assert [b.queued for b in boots] == [3] * 3  # all three waited behind the report
    failed = [b for b in boots if not b.ok]
    assert len(failed) == 2, [(b.name, b.error) for b in boots]
    for b in failed:
        assert "DuplicateColumn" in b.error and 'column "amount_cents"' in b.error, b.error
        assert "Another session moved the database from 0001 to 0002" in b.error, b.error
    assert [b.ran for b in boots] == [["0001 -> 0002"]] * 3  # all three started it
    assert not any(b.waited for b in boots)
    assert alembic_versions(db_url) == ["0002"] and cents_filled_once(db_url)
    served = next(b for b in boots if b.ok).server
    assert served.get("/api/health") == {"status": "ok"}


def test_an_advisory_lock_in_env_py_makes_copies_wait_and_find_nothing_to_do(chain, db_url,
                                                                              stop_servers):
    # the chain's env.py as Exercise 1 has it
    lab = fleet(chain, db_url, env_py=without_timeouts, deals=FEW)
    stop_servers(lab)
    appserver.release(lab, "v2", migrations=True)
    boots = appserver.boot(lab, "v2", 3, upgrade=True, during_report="deals")
    assert [b.queued for b in boots] == [3] * 3  # the runner behind the report, two behind it
    assert all(b.ok for b in boots), [(b.name, b.error) for b in boots]
    assert sorted(len(b.ran) for b in boots) == [0, 0, 1]
    runner = next(b for b in boots if b.ran)
    # PostgreSQL's pg_locks saw the other two wait for the runner's advisory lock
    assert not runner.waited and sum(b.waited for b in boots) == 2
    assert alembic_versions(db_url) == ["0002"] and cents_filled_once(db_url)


def test_a_lock_that_does_not_wait_lets_the_race_through(chain, db_url, stop_servers):
    """Exercise 1's wrong answer: pg_try_advisory_xact_lock returns false at once."""
    lab = fleet(chain, db_url, env_py=lambda t: without_timeouts(t).replace(LOCK, LOCK.replace(
        "pg_advisory_xact_lock", "pg_try_advisory_xact_lock")), deals=FEW)
    stop_servers(lab)
    appserver.release(lab, "v2", migrations=True)
    boots = appserver.boot(lab, "v2", 3, upgrade=True, during_report="deals")
    assert sum(not b.ok for b in boots) == 2, [(b.name, b.error) for b in boots]
    assert all("DuplicateColumn" in b.error for b in boots if not b.ok)


def test_a_release_step_migrates_once_and_copies_run_nothing(chain, db_url, stop_servers):
    lab = fleet(chain, db_url, env_py=without_lock, deals=FEW)
    stop_servers(lab)
    appserver.release(lab, "v2")
    with pytest.raises(LabError, match="has no migrations/ to run at boot"):
        appserver.boot(lab, "v2", 1, upgrade=True)
    flask_in(lab.workspace, "db", "upgrade", check=True)
    boots = appserver.boot(lab, "v2", 3, upgrade=False)
    assert all(b.ok and not b.ran for b in boots), [(b.name, b.error, b.ran) for b in boots]
    assert alembic_versions(db_url) == ["0002"]


def test_a_failure_line_says_when_another_session_moved_alembic_version():
    seen = {"autocommit": [], "stamped": False}
    assert outcome.story("upgrade", ("0001",), ("0002",), seen, "migrations") == (
        "Another session moved the database from 0001 to 0002 while this command ran "
        "(two upgrades at once); this command's own work was rolled back")
    # its own committed stamp (transaction_per_migration): the old wording stays
    seen = {"autocommit": [], "stamped": True}
    assert "was committed before the failure (transaction_per_migration)" in outcome.story(
        "upgrade", ("0001",), ("0002",), seen, "migrations")


def test_an_idle_session_blocks_the_upgrade_until_it_is_terminated(chain, db_url, stop_servers):
    lab = fleet(chain, db_url, upto="0002", env_py=without_timeouts, deals=FEW)
    stop_servers(lab)
    with traffic.IdleSession(db_url, "UPDATE deals SET title = title WHERE id = 11") as idle:
        job = appserver.Job(lab, "deploy", "flask db upgrade")
        blockers = []
        for _ in range(200):  # until the deploy's session waits (its flask has started)
            blockers = rows(db_url, "SELECT pg_blocking_pids(pid) FROM pg_stat_activity"
                                    " WHERE application_name = 'deploy'"
                                    " AND cardinality(pg_blocking_pids(pid)) > 0")
            if blockers:
                break
            time.sleep(0.1)
        assert blockers == [([idle.pid],)], rows(  # if not: who blocked the deploy instead
            db_url, "SELECT pid, backend_type, application_name, state, left(query, 80)"
                    " FROM pg_stat_activity WHERE pid = ANY(:p)",
            p=[pid for (pids,) in blockers for pid in pids])
        held = rows(db_url, "SELECT relation::regclass::text, mode FROM pg_locks"
                            " WHERE pid = :p AND locktype = 'relation'", p=idle.pid)
        assert ("deals", "RowExclusiveLock") in held
        time.sleep(1)
        assert job.running()  # no lock_timeout: it waits on
        rows(db_url, "SELECT pg_terminate_backend(:p)", p=idle.pid)
        assert job.wait() == 0
        assert idle.poke().startswith("server closed the connection unexpectedly")
    assert alembic_versions(db_url) == ["0002"]


@pytest.mark.parametrize("stop", ["stdin closed", "pidfile's SIGTERM"])
def test_a_copy_stopped_while_its_boot_upgrade_waits_ends_that_upgrade_too(
        chain, db_url, stop_servers, stop):
    """A copy whose `flask db upgrade` at boot waits on a lock forever (no lock_timeout),
    stopped as its kernel's end does (stdin closed) or as a reset does (SIGTERM to the
    pid in its pidfile): its upgrade's session goes with it, nothing of it runs on."""
    lab = fleet(chain, db_url, upto="0002", env_py=without_timeouts, deals=FEW)
    stop_servers(lab)
    appserver.release(lab, "v2", migrations=True)
    with traffic.IdleSession(db_url, "UPDATE deals SET title = title WHERE id = 11"):
        server = appserver._launch(lab, "v2-1", "v2", upgrade=True)
        for _ in range(300):  # until its upgrade's ALTER waits behind the idle session
            if rows(db_url, appserver.LOCK_WAITERS, names=["v2-1"])[0][0] or not server.running():
                break
            time.sleep(0.1)
        assert rows(db_url, appserver.LOCK_WAITERS, names=["v2-1"])[0][0] == 1, server.log.read_text(errors="replace")
        release = str(lab.workspace / "releases" / "v2")
        ours = [p for p in psutil.process_iter(["cwd"]) if p.info["cwd"] == release]
        assert len(ours) == 2  # the server and its upgrade
        if stop == "stdin closed":
            server.stop()
        else:
            processes.end(lab.workspace, only="v2-1")
        assert psutil.wait_procs(ours, timeout=10)[1] == []  # none still alive
    # PostgreSQL noticed its client gone once the lock came (a waiting backend does not
    # read its socket): the upgrade's transaction rolled back, not committed
    for _ in range(100):
        if not rows(db_url, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'v2-1'")[0][0]:
            break
        time.sleep(0.1)
    assert alembic_versions(db_url) == ["0001"] and "amount_cents" not in column_names(db_url, "deals")


RETRYING = "WARNI [alembic.env] a lock is busy: retrying, 15 attempts at most"
RETRIED = "INFO  [alembic.env] the locks were free on a later attempt: done"
BLOCKER = "UPDATE deals SET title = title WHERE id = 11"  # a forgotten session's ROW EXCLUSIVE


def with_revision_x(lab):
    """The chain up to 0002, applied; and a revision 0003 whose ALTER needs ACCESS
    EXCLUSIVE on deals (a row lock's ROW EXCLUSIVE blocks it)."""
    flask_in(lab.workspace, "db", "upgrade", check=True)
    vacuum(lab.url)  # 0002 rewrote every deal: no autovacuum holds a lock on deals from here
    (lab.workspace / VERSIONS / "0003_x.py").write_text(
        '"""x\n\nRevision ID: 0003\nRevises: 0002\n"""\nfrom alembic import op\n\n'
        'revision = "0003"\ndown_revision = "0002"\nbranch_labels = None\ndepends_on = None\n\n\n'
        'def upgrade():\n    op.execute("ALTER TABLE deals ADD COLUMN x int")\n\n\n'
        'def downgrade():\n    op.execute("ALTER TABLE deals DROP COLUMN x")\n')


def test_the_upgrade_retries_past_a_lock_held_longer_than_one_timeout(chain, db_url, stop_servers):
    """The notebook's DROP COLUMNs under traffic: a request (here a forgotten session)
    holds its lock longer than one lock_timeout; a later attempt gets through."""
    lab = fleet(chain, db_url, upto="0002", deals=FEW)
    stop_servers(lab)
    with_revision_x(lab)
    with traffic.IdleSession(db_url, BLOCKER):
        job = appserver.Job(lab, "deploy", "flask db upgrade")
        for _ in range(300):  # until the first attempt has given up: one lock_timeout is past
            if not job.running() or RETRYING in job.log.read_text(errors="replace"):
                break
            time.sleep(0.1)
        assert job.running(), job.log.read_text(errors="replace")
        # no attempt has got through while the blocker holds its lock
        assert alembic_versions(db_url) == ["0002"] and "x" not in column_names(db_url, "deals")
    assert job.wait() == 0  # the blocker is gone: a later attempt applies 0003
    output = job.log.read_text(errors="replace")
    assert output.count(RETRYING) == 1 and output.count(RETRIED) == 1, output
    assert "Error" not in output, output
    assert alembic_versions(db_url) == ["0003"] and "x" in column_names(db_url, "deals")


def test_the_upgrade_gives_up_after_every_attempt_with_one_line_and_nothing_applied(
        chain, db_url, stop_servers):
    """With 3 attempts, not the chain's 15: how many does not change what the last one
    does (test_lab08_rename times all 15)."""
    def three_attempts(text):
        return text.replace("run_with_retries(run_migrations_online)",
                            "run_with_retries(run_migrations_online, 3)")

    lab = fleet(chain, db_url, upto="0002", env_py=three_attempts, deals=FEW)
    stop_servers(lab)
    with_revision_x(lab)
    with traffic.IdleSession(db_url, BLOCKER) as idle:
        proc = flask_in(lab.workspace, "db", "upgrade")
        assert idle.poke() == "ok"  # held throughout: every attempt met it
    assert proc.returncode != 0
    lines = [line for line in proc.output.splitlines()
             if line.strip() and not line.startswith("INFO  [alembic")]
    assert lines[0] == RETRYING.replace("15", "3") and len(lines) == 2, proc.output  # once, then one line
    assert "Traceback" not in proc.output
    assert lines[1].startswith("Error: LockNotAvailable: canceling statement due to lock timeout"), proc.output
    assert lines[1].endswith("Nothing was applied; the database is still at 0002."), proc.output
    assert alembic_versions(db_url) == ["0002"] and "x" not in column_names(db_url, "deals")


def test_each_timeout_fires(chain, db_url, db_name, stop_servers):
    lab = fleet(chain, db_url, upto="0002", deals=FEW)
    stop_servers(lab)
    flask_in(lab.workspace, "db", "upgrade", check=True)
    rows(db_url, f"ALTER DATABASE {db_name} SET statement_timeout = '1s'")
    rows(db_url, f"ALTER DATABASE {db_name} SET idle_in_transaction_session_timeout = '3s'")
    appserver.release(lab, "v2")
    server = appserver.start(lab, "v2")  # new sessions: the new defaults
    # statement_timeout: the user's read waits behind ACCESS EXCLUSIVE, then gets a 500
    with traffic.IdleSession(db_url, "LOCK TABLE deals IN ACCESS EXCLUSIVE MODE"):
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(f"{server.url}/api/deals?limit=5", timeout=30)
        assert answer.value.code == 500
        answer.value.close()
    assert "QueryCanceled" in server.last_error() and "statement timeout" in server.last_error()
    # idle_in_transaction_session_timeout: the server ends the forgotten session
    idle = traffic.IdleSession(db_url, "UPDATE deals SET title = title WHERE id = 11")
    for _ in range(100):
        if not rows(db_url, "SELECT 1 FROM pg_stat_activity WHERE pid = :p", p=idle.pid):
            break
        time.sleep(0.1)
    assert not rows(db_url, "SELECT 1 FROM pg_stat_activity WHERE pid = :p", p=idle.pid)
    assert idle.poke() != "ok"
    idle.close()
    rows(db_url, f"ALTER DATABASE {db_name} RESET ALL")


def test_old_code_that_maps_a_dropped_column_fails_and_a_downgrade_brings_it_back_empty(
        chain, db_url, stop_servers):
    lab = fleet(chain, db_url, upto="0008")
    stop_servers(lab)
    drop = next((lab.workspace / VERSIONS).glob("0008_*.py"))
    drop_text = drop.read_text()
    drop.unlink()  # back when the old release serves
    flask_in(lab.workspace, "db", "upgrade", check=True)
    models = lab.workspace / "models.py"
    chained = models.read_text()
    models.write_text(chained.replace(
        "    note = db.Column(db.Text)\n", "    is_large = db.Column(db.Boolean)\n    note = db.Column(db.Text)\n"))
    appserver.release(lab, "v5")  # maps is_large
    models.write_text(chained)
    old = appserver.start(lab, "v5")
    assert isinstance(old.get("/api/deals?limit=5"), list)
    drop.write_text(drop_text)
    assert rows(db_url, "SELECT count(*) FROM deals WHERE is_large")[0][0] > 0
    flask_in(lab.workspace, "db", "upgrade", check=True)
    with pytest.raises(urllib.error.HTTPError) as answer:
        old.get("/api/deals?limit=5")
    answer.value.close()
    assert answer.value.code == 500 and "UndefinedColumn" in old.last_error()
    flask_in(lab.workspace, "db", "downgrade", check=True)
    assert "is_large" in column_names(db_url, "deals")
    assert rows(db_url, "SELECT count(is_large) FROM deals")[0][0] == 0  # back, empty


SESSION_LOCK = '''    with connectable.connect() as connection:
        # a session lock: it outlives the commits of an autocommit_block
        connection.exec_driver_sql("SELECT pg_advisory_lock(20260901)")
        connection.commit()
        try:
            context.configure(
                connection=connection,
                target_metadata=get_metadata(),
                **conf_args
            )

            with context.begin_transaction():
                context.run_migrations()
        finally:
            connection.exec_driver_sql("SELECT pg_advisory_unlock(20260901)")
            connection.commit()
'''


def with_autocommit_fill(lab):
    revision = next((lab.workspace / VERSIONS).glob("0002_*.py"))
    revision.write_text(scenarios.amount_cents_revision(autocommit=True))


@pytest.mark.parametrize("lock", ["transaction", "session"])
def test_an_autocommit_block_lets_the_transaction_lock_go_but_not_a_session_lock(
        chain, db_url, stop_servers, lock):
    """Recap's caveat: pg_advisory_xact_lock goes with the transaction that an
    autocommit_block commits, so while the fill runs, the lock is free for the
    next copy; pg_advisory_lock (a session lock, released by hand) is still held.
    Seen in pg_locks, from the migrating session, during the fill."""
    def env_py(text):
        text = without_timeouts(text)
        if lock == "transaction":
            return text
        start = text.index("    with connectable.connect() as connection:")
        end = text.index("\n\n\n", start) + 1  # the end of run_migrations_online()
        return text[:start] + SESSION_LOCK + text[end:]

    lab = fleet(chain, db_url, env_py=env_py)
    stop_servers(lab)
    with_autocommit_fill(lab)
    job = appserver.Job(lab, "deploy", "flask db upgrade")
    during_fill = []
    while job.running() and not during_fill:
        during_fill = rows(db_url, """
            SELECT EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid
                           AND l.locktype = 'advisory' AND l.granted)
            FROM pg_stat_activity a WHERE a.application_name = 'deploy'
              AND a.state = 'active' AND a.query LIKE 'UPDATE deals SET amount_cents%'""")
        time.sleep(0.02)
    assert job.wait() == 0
    assert during_fill == [(lock == "session",)]
    assert alembic_versions(db_url) == ["0002"] and cents_filled_once(db_url)


def test_pg_cancel_backend_leaves_an_idle_session_in_its_transaction_with_its_locks(db_url):
    """The prose (and the notebook's cell, on the lab's own blocker): pg_cancel_backend
    cancels a running query; an idle session has none, so the cancel returns true and
    changes nothing: the transaction and its locks stay, until pg_terminate_backend."""
    rows(db_url, "CREATE TABLE t (id int)")
    with traffic.IdleSession(db_url, "INSERT INTO t VALUES (1)") as idle:
        assert rows(db_url, "SELECT pg_cancel_backend(:p)", p=idle.pid) == [(True,)]
        time.sleep(0.5)  # a cancel that did anything would have done it by now
        assert rows(db_url, "SELECT state FROM pg_stat_activity WHERE pid = :p",
                    p=idle.pid) == [("idle in transaction",)]
        assert rows(db_url, "SELECT mode FROM pg_locks WHERE pid = :p AND relation = 't'::regclass",
                    p=idle.pid) == [("RowExclusiveLock",)]
        assert idle.poke() == "ok"  # its owner notices nothing: the transaction goes on
        assert rows(db_url, "SELECT pg_terminate_backend(:p)", p=idle.pid) == [(True,)]
        assert idle.poke().startswith(("server closed the connection unexpectedly",
                                       "terminating connection due to administrator command"))


def test_transaction_timeout_ends_a_busy_transaction_on_postgresql_17_and_later(db_url):
    """The prose: PostgreSQL 17's `transaction_timeout` (the second target, 15, lacks
    it). Unlike idle_in_transaction_session_timeout, it ends a transaction that keeps
    running statements, none of them idle for long, none of them long."""
    version = rows(db_url, "SELECT current_setting('server_version_num')::int")[0][0]
    if version < 170000:
        with pytest.raises(Exception, match="transaction_timeout"):
            rows(db_url, "SET transaction_timeout = '1s'")
        pytest.skip(f"PostgreSQL {version // 10000} has no transaction_timeout")
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)

    def busy_transaction(timeout):
        """2 s of short statements, 50 ms apart, in one transaction: never idle, none long."""
        with engine.connect() as conn:
            conn.exec_driver_sql(f"SET transaction_timeout = '{timeout}'")
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()  # it begins
            try:
                for _ in range(40):
                    conn.exec_driver_sql("SELECT pg_sleep(0.05)")
            except sa.exc.OperationalError as exc:  # the server ended the session (FATAL)
                conn.invalidate()
                assert "server closed the connection" in str(exc) or "transaction timeout" in str(exc)
                return pid, False
            return pid, True

    try:
        assert busy_transaction("0")[1]  # without it, nothing ends that transaction
        pid, finished = busy_transaction("1s")
        assert not finished
        for _ in range(50):  # the backend is gone (it may take a moment to exit)
            if not rows(db_url, "SELECT 1 FROM pg_stat_activity WHERE pid = :p", p=pid):
                break
            time.sleep(0.1)
        assert not rows(db_url, "SELECT 1 FROM pg_stat_activity WHERE pid = :p", p=pid)
    finally:
        engine.dispose()
