"""The lock trace (`flask trace upgrade`, labapp.live.locktrace) reports what the
server really did, on the real server (the embedded one, or DATABASE_URL's).

Each test builds a small Flask-Migrate project of its own in a temp folder: an
app.py that does not import labapp (the command comes from the kit's
`flask.commands` entry point, as in any project), a `deals` table made with
plain SQL, and the revisions under test. It runs `flask trace upgrade --save`
as a user does and checks the saved trace and the printed table. Where a claim
is about what the app's sessions feel (blocked or not), another session tries
the app's locks with NOWAIT while the migration runs, so the server itself
confirms it. Durations are asserted only as the coarse buckets the design needs.
"""
import concurrent.futures
import contextlib
import json
import re
import threading
import time

import pytest
import sqlalchemy as sa

from helpers import assert_one_line_error, flask_in, postgres_only, revision_source, run_flask
from labapp import create_app
from labapp.live import locktrace
from labapp.runtime import workspace

APP = '''"""A Flask-Migrate project of its own: nothing here imports labapp."""
import os

from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()
app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["TRACE_DATABASE_URL"]
db.init_app(app)
Migrate(app, db)
'''
SCHEMA = """
CREATE TYPE currency AS ENUM ('EUR', 'USD');
CREATE TABLE deals (id serial PRIMARY KEY, amount integer, title varchar(50), cur currency);
INSERT INTO deals (amount, title, cur) SELECT g, 'deal ' || g, 'EUR' FROM generate_series(1, 200) g;
"""
TIMEOUT = 60  # seconds: a helper session that waits longer gives up (the test then fails)


class Project:
    """A scratch Flask-Migrate project on a fresh database with the `deals` table."""

    def __init__(self, folder, url):
        self.folder, self.url = folder, url
        folder.mkdir()
        (folder / "app.py").write_text(APP)
        workspace.init_migrations(folder / "migrations")
        self.revisions = 0

    def revision(self, body):
        """The next revision, its upgrade() made of `body` (indented lines)."""
        self.revisions += 1
        rev, down = f"{self.revisions:04d}", f"{self.revisions - 1:04d}" if self.revisions > 1 else None
        (self.folder / "migrations" / "versions" / f"{rev}_x.py").write_text(revision_source(rev, down, body))

    def flask(self, *args):
        return flask_in(self.folder, *args, env={"TRACE_DATABASE_URL": self.url})

    def trace(self, *args):
        """`flask trace upgrade --save`: (the process, the Trace it saved)."""
        saved = self.folder / "trace.json"
        proc = self.flask("trace", "upgrade", "--save", str(saved), *args)
        assert proc.returncode == 0, proc.output
        return proc, locktrace.load(saved)


@pytest.fixture
def project(tmp_path, db_url):
    with _engine(db_url, "setup").begin() as conn:
        conn.exec_driver_sql(SCHEMA)
    return Project(tmp_path / "project", db_url)


def _engine(url, name):
    """An engine whose sessions are named `name` in pg_stat_activity."""
    return sa.create_engine(url, poolclass=sa.pool.NullPool,
                            connect_args={"application_name": name, "connect_timeout": 5})


def only(trace, start):
    """The one statement of `trace` whose text starts with `start`."""
    found = [s for s in trace.shown() if " ".join(s.sql.split()).startswith(start)]
    assert len(found) == 1, [s.sql for s in trace.shown()]
    return found[0]


def locks(step):
    """A statement's locks as (relation, mode), in the trace's order."""
    return [(lock.relation, lock.mode) for lock in step.locks]


def row(output, start):
    """The table's row of the statement starting with `start`, as its cells."""
    lines = [line for line in output.splitlines() if re.match(r"\d+\s+\S+\s+" + re.escape(start), line)]
    assert len(lines) == 1, output
    return re.split(r"\s{2,}", lines[0])


def can_lock(conn, mode, table="deals"):
    """Could the app take `mode` on `table` right now? (LOCK ... NOWAIT, undone)."""
    try:
        conn.exec_driver_sql(f"LOCK TABLE {table} IN {mode} MODE NOWAIT")
        return True
    except sa.exc.OperationalError as exc:
        if getattr(exc.orig, "pgcode", None) != "55P03":  # lock_not_available
            raise
        return False
    finally:
        conn.rollback()


def app_can(url):
    """{"reads": ..., "writes": ...}: would the app's SELECT / INSERT get their locks now?"""
    with _engine(url, "app").connect() as conn:
        return {"reads": can_lock(conn, locktrace.READ), "writes": can_lock(conn, locktrace.WRITE)}


MIGRATION_STATE = ("SELECT wait_event_type FROM pg_stat_activity WHERE datname = current_database() "
                   "AND application_name = 'migration' AND state = 'active' AND query LIKE :query")


@contextlib.contextmanager
def while_migration_runs(url, query, then, holding=None, hold=0.0):
    """In a thread: once the session named `migration` runs a statement LIKE
    `query`, call then() and keep its result in the yielded dict. `holding` (SQL)
    runs first, in an open transaction of a session named `blocker` (then the
    statement must be waiting for a lock), which commits `hold` seconds after then()."""
    seen = {}
    ready = threading.Event()

    def work():
        with contextlib.ExitStack() as stack:
            if holding:
                blocker = stack.enter_context(_engine(url, "blocker").connect())
                blocker.exec_driver_sql(holding)
            spy = stack.enter_context(_engine(url, "spy").connect())
            ready.set()
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline and "result" not in seen:
                state = spy.execute(sa.text(MIGRATION_STATE), {"query": query}).first()
                spy.rollback()
                if state is not None and (not holding or state[0] == "Lock"):
                    seen["result"] = then()
                time.sleep(0.01)
            time.sleep(hold)
            if holding:
                blocker.commit()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        done = pool.submit(work)
        while not ready.wait(0.05) and not done.done():
            pass
        yield seen
        done.result()  # its exception, if any, fails the test here
    assert "result" in seen, f"the migration never ran {query!r} (as session 'migration')"


# -- what each kind of statement locks --------------------------------------------------

@postgres_only
def test_add_column_takes_access_exclusive_until_commit_without_a_rewrite(project):
    """ADD COLUMN (nullable, no default) takes ACCESS EXCLUSIVE on the table and
    rewrites nothing; the lock stays until COMMIT (here through a 1.2 s statement
    after it: the app's reads and writes really are refused then), and the trace
    says it blocks reads and writes."""
    project.revision('    op.add_column("deals", sa.Column("note", sa.Text))\n'
                     '    op.execute("SELECT pg_sleep(1.2)")\n')
    with while_migration_runs(project.url, "SELECT pg_sleep%", lambda: app_can(project.url)) as seen:
        proc, trace = project.trace()
    assert seen["result"] == {"reads": False, "writes": False}

    step = only(trace, "ALTER TABLE deals ADD COLUMN note TEXT")
    assert locks(step) == [("deals", "ACCESS EXCLUSIVE")]
    assert step.rewrites == []
    lock, tx = step.locks[0], trace.transactions[step.transaction]
    assert tx.outcome == "COMMIT" and lock.end == tx.end
    assert lock.blocks == ("reads", "writes")
    assert locktrace.bucket(lock.held) == "≥ 1 s"
    cells = row(proc.output, "ALTER TABLE deals ADD COLUMN note")
    assert [cells[i] for i in (3, 4, 6, 7, 8)] == [
        "deals: ACCESS EXCLUSIVE", "no", "—", "≥ 1 s", "reads, writes"]
    assert trace.verdict() == ('ACCESS EXCLUSIVE on deals held ≥ 1 s, from "ALTER TABLE deals '
                               'ADD COLUMN note TEXT" to COMMIT: every read and write of deals '
                               'in that time waited')
    assert trace.verdict() in proc.output


@postgres_only
def test_a_type_change_rewrites_the_table_unless_the_types_are_binary_compatible(project):
    """varchar(50) -> text keeps the table's file; integer -> bigint writes a new one
    (taking SHARE for its index rebuilds, and the enum type of the column it copies;
    on PostgreSQL 15 also the table's own row type, which the trace leaves out)."""
    project.revision('    op.alter_column("deals", "title", type_=sa.Text)\n'
                     '    op.alter_column("deals", "amount", type_=sa.BigInteger)\n')
    proc, trace = project.trace()
    to_text = only(trace, "ALTER TABLE deals ALTER COLUMN title TYPE TEXT")
    to_bigint = only(trace, "ALTER TABLE deals ALTER COLUMN amount TYPE BIGINT")
    assert to_text.rewrites == [] and to_bigint.rewrites == ["deals"]
    assert locks(to_text) == [("deals", "ACCESS EXCLUSIVE")]
    assert locks(to_bigint) == [("deals", "SHARE"), ("type currency", "ACCESS SHARE")]
    assert row(proc.output, "ALTER TABLE deals ALTER COLUMN title")[4] == "no"
    assert row(proc.output, "ALTER TABLE deals ALTER COLUMN amount")[4] == "yes: deals"


@postgres_only
def test_a_plain_create_index_holds_share_until_commit_blocking_writes_not_reads(project):
    """CREATE INDEX in a transaction takes SHARE on the table and keeps it until
    COMMIT, through the slow statement after it: the app's writes wait, its reads
    do not (confirmed by the server during the sleep). The verdict names it."""
    project.revision('    op.create_index("ix_deals_title", "deals", ["title"])\n'
                     '    op.execute("SELECT pg_sleep(1.2)")\n')
    with while_migration_runs(project.url, "SELECT pg_sleep%", lambda: app_can(project.url)) as seen:
        proc, trace = project.trace()
    assert seen["result"] == {"reads": True, "writes": False}

    step = only(trace, "CREATE INDEX ix_deals_title ON deals (title)")
    assert locks(step) == [("deals", "SHARE")]  # the new index's own lock is not a table's
    assert step.locks[0].blocks == ("writes",)
    assert locktrace.bucket(step.locks[0].held) == "≥ 1 s"
    cells = row(proc.output, "CREATE INDEX ix_deals_title")
    assert [cells[i] for i in (3, 4, 6, 7, 8)] == ["deals: SHARE", "no", "—", "≥ 1 s", "writes"]
    assert trace.verdict() == ('SHARE on deals held ≥ 1 s, from "CREATE INDEX ix_deals_title ON '
                               'deals (title)" to COMMIT: every write of deals in that time '
                               'waited (reads went on)')


@postgres_only
def test_create_index_concurrently_is_seen_by_the_watcher_and_blocks_neither(project):
    """CREATE INDEX CONCURRENTLY in an autocommit_block runs outside any
    transaction: only the watcher sees its SHARE UPDATE EXCLUSIVE (a session's
    open write makes it wait, so it runs long enough), which blocks neither the
    app's reads nor its writes (the server lets both through meanwhile)."""
    project.revision('    with op.get_context().autocommit_block():\n'
                     '        op.create_index("ix_deals_amount", "deals", ["amount"],\n'
                     '                        postgresql_concurrently=True)\n')
    with while_migration_runs(project.url, "CREATE INDEX CONCURRENTLY%", lambda: app_can(project.url),
                              holding="INSERT INTO deals (amount) VALUES (1)", hold=0.3) as seen:
        proc, trace = project.trace()
    assert seen["result"] == {"reads": True, "writes": True}

    step = only(trace, "CREATE INDEX CONCURRENTLY ix_deals_amount")
    assert step.transaction is None
    assert locks(step) == [("deals", "SHARE UPDATE EXCLUSIVE")]
    assert step.locks[0].seen_by == "watcher" and step.locks[0].blocks == ()
    assert [(w.target, w.behind) for w in trace.waits] == [("another transaction", ["blocker"])]
    assert row(proc.output, "CREATE INDEX CONCURRENTLY")[:2] == ["1", "auto"]
    assert row(proc.output, "CREATE INDEX CONCURRENTLY")[3] == "deals: SHARE UPDATE EXCLUSIVE"
    assert row(proc.output, "CREATE INDEX CONCURRENTLY")[-1] == "—"
    assert "#1 waited" in proc.output and "for another transaction to end, behind blocker" in proc.output


@postgres_only
def test_add_value_locks_the_type_and_no_table(project):
    """ALTER TYPE ... ADD VALUE (in a transaction, PG 12+) locks the type only;
    a type lock blocks none of the app's reads or writes."""
    project.revision("""    op.execute("ALTER TYPE currency ADD VALUE 'BTC'")\n""")
    proc, trace = project.trace()
    step = only(trace, "ALTER TYPE currency ADD VALUE 'BTC'")
    assert locks(step) == [("type currency", "EXCLUSIVE")]
    assert step.locks[0].blocks == ()
    cells = row(proc.output, "ALTER TYPE currency ADD VALUE")
    assert [cells[3], cells[-1]] == ["type currency: EXCLUSIVE", "—"]
    assert trace.verdict().startswith("no lock that blocks reads or writes")


# -- transactions and waits ---------------------------------------------------------------

@postgres_only
def test_transaction_per_migration_lets_each_revision_go_at_its_own_commit(project):
    """With transaction_per_migration=True in env.py, the first revision's lock
    ends with that revision's COMMIT, before the second revision's 1.2 s sleep:
    shorter than the whole upgrade."""
    env_py = project.folder / "migrations" / "env.py"
    text = env_py.read_text()
    assert text.count("            target_metadata=get_metadata(),\n") == 1
    env_py.write_text(text.replace("            target_metadata=get_metadata(),\n",
                                   "            target_metadata=get_metadata(),\n"
                                   "            transaction_per_migration=True,\n"))
    project.revision('    op.add_column("deals", sa.Column("note", sa.Text))\n')
    project.revision('    op.execute("SELECT pg_sleep(1.2)")\n')
    proc, trace = project.trace()
    alter, sleep = only(trace, "ALTER TABLE deals ADD COLUMN"), only(trace, "SELECT pg_sleep")
    lock = alter.locks[0]
    assert (alter.transaction, sleep.transaction) == (0, 1)
    assert trace.transactions[0].outcome == "COMMIT" and lock.end == trace.transactions[0].end
    assert lock.end <= sleep.start
    assert trace.end - trace.start >= 1.2 > lock.held
    assert row(proc.output, "ALTER TABLE deals ADD COLUMN")[1] == "1"
    assert row(proc.output, "SELECT pg_sleep")[1] == "2"
    assert row(proc.output, "ALTER TABLE deals ADD COLUMN")[7] != "≥ 1 s"


@postgres_only
def test_an_alter_that_waits_behind_a_reader_is_reported_waiting(project):
    """A session that read `deals` keeps its ACCESS SHARE for 1.2 s after the
    migration's ALTER began to wait for ACCESS EXCLUSIVE: the watcher reports the
    wait, what it waited for and behind whom."""
    project.revision('    op.add_column("deals", sa.Column("note", sa.Text))\n')
    with while_migration_runs(project.url, "ALTER TABLE deals ADD COLUMN%", lambda: True,
                              holding="SELECT count(*) FROM deals", hold=1.2):
        proc, trace = project.trace()
    step = only(trace, "ALTER TABLE deals ADD COLUMN")
    assert [(w.step, w.target, w.mode, w.behind) for w in trace.waits] == [
        (step.index, "deals", "ACCESS EXCLUSIVE", ["blocker"])]
    assert locktrace.bucket(trace.waits[0].seconds) == "≥ 1 s"
    assert row(proc.output, "ALTER TABLE deals ADD COLUMN")[6] == "≥ 1 s"
    assert "#1 waited ≥ 1 s for ACCESS EXCLUSIVE on deals, behind blocker" in proc.output
    # held for sure only from the watcher's first look that saw it granted, after the wait
    lock = next(lock for lock in step.locks if lock.mode == "ACCESS EXCLUSIVE")
    assert trace.waits[0].end <= lock.granted <= lock.end
    assert trace.blocking("deals", "reads") == (lock.granted, lock.end)


@postgres_only
def test_a_failed_upgrade_shows_its_trace_to_the_failure_then_one_line(project):
    """A revision that fails: the table still comes (and --save writes it), its
    last row the failed statement, its transaction rolled back with the locks
    it held; then one error line, no traceback."""
    project.revision('    op.add_column("deals", sa.Column("note", sa.Text))\n'
                     '    op.create_table("deals", sa.Column("id", sa.Integer, primary_key=True))\n')
    saved = project.folder / "trace.json"
    proc = project.flask("trace", "upgrade", "--save", str(saved))
    assert proc.returncode == 1 and "Traceback" not in proc.output, proc.output
    assert [line for line in proc.output.splitlines() if line.startswith("Error")] == [
        'Error: DuplicateTable: relation "deals" already exists (LABAPP_DEBUG=1 shows the traceback)']
    trace = locktrace.load(saved)
    add, create = only(trace, "ALTER TABLE deals ADD COLUMN"), only(trace, "CREATE TABLE deals")
    assert create.failed.startswith("DuplicateTable") and trace.shown()[-1] is create
    tx = trace.transactions[add.transaction]
    assert tx.outcome == "ROLLBACK" and locks(add) == [("deals", "ACCESS EXCLUSIVE")]
    assert add.locks[0].end == tx.end
    assert row(proc.output, "CREATE TABLE deals")[5] == "failed"
    assert "tx 1: rolled back, its statements undone" in proc.output


# -- the conflict table, the refusal, the file --------------------------------------------

@postgres_only
def test_the_conflict_table_is_the_servers(db_url):
    """Every pair of table lock modes: the second can be taken NOWAIT while
    another session holds the first exactly when CONFLICTS says they don't
    conflict; so blocks(mode) (reads = ACCESS SHARE, writes = ROW EXCLUSIVE)
    is the server's answer for every mode."""
    with _engine(db_url, "setup").begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id int)")
    with _engine(db_url, "holder").connect() as holder, _engine(db_url, "app").connect() as app:
        for held in locktrace.MODES:
            holder.exec_driver_sql(f"LOCK TABLE t IN {held} MODE")
            free = {mode for mode in locktrace.MODES if can_lock(app, mode, "t")}
            holder.rollback()
            assert free == set(locktrace.MODES) - locktrace.CONFLICTS[held], held
            assert locktrace.blocks(held) == tuple(
                op for op, mode in (("reads", "ACCESS SHARE"), ("writes", "ROW EXCLUSIVE"))
                if mode not in free), held
    assert [m for m in locktrace.MODES if "reads" in locktrace.blocks(m)] == ["ACCESS EXCLUSIVE"]


def test_a_database_other_than_postgresql_is_refused_in_one_line(tmp_path):
    """SQLite has no pg_locks: the command says so in one line, exit 1, and
    migrates nothing."""
    project = Project(tmp_path / "project", f"sqlite:///{tmp_path / 'crm.sqlite'}")
    project.revision('    op.create_table("deals", sa.Column("id", sa.Integer, primary_key=True))\n')
    proc = project.flask("trace", "upgrade")
    assert_one_line_error(proc, "Error: the lock trace needs PostgreSQL", "sqlite")
    assert not (tmp_path / "crm.sqlite").exists()  # not even connected


@postgres_only
def test_a_saved_trace_loads_back_the_same(project, tmp_path):
    """save() then load(): the same table, verdict and intervals; saving again
    writes the same JSON; every time is on the time.monotonic() timeline."""
    project.revision('    op.add_column("deals", sa.Column("note", sa.Text))\n'
                     '    op.create_index("ix_deals_note", "deals", ["note"])\n')
    before = time.monotonic()
    proc, trace = project.trace("--exact")
    after = time.monotonic()
    assert trace.table(exact=True) in proc.output and trace.verdict(exact=True) in proc.output
    saved = json.loads((project.folder / "trace.json").read_text())
    assert saved["clock"] == "time.monotonic"
    trace.save(tmp_path / "again.json")
    assert json.loads((tmp_path / "again.json").read_text()) == saved
    assert before < trace.start < trace.end < after
    held = trace.held_intervals()
    assert [(relation, mode) for relation, mode, _, _ in held] == [
        ("deals", "ACCESS EXCLUSIVE"), ("deals", "SHARE")]
    assert all(before < start < end < after for _, _, start, end in held)
    assert [label for _, _, label in trace.statement_intervals()] == [
        "ALTER TABLE deals ADD COLUMN note TEXT", "CREATE INDEX ix_deals_note ON deals (note)"]
    assert trace.wait_intervals() == []


# -- the command everywhere, and the engine left as found ---------------------------------

def test_flask_trace_exists_in_any_flask_app_and_once_in_the_kits(tmp_path):
    """The flask.commands entry point gives `flask trace` to a project that never
    imports labapp, and the kit's own app does not add a second one."""
    project = Project(tmp_path / "project", "sqlite://")
    app_py = (project.folder / "app.py").read_text()
    assert not re.search(r"^(import|from) labapp", app_py, re.MULTILINE)
    assert "upgrade" in project.flask("trace", "--help").output
    listed = run_flask("--help").output
    assert len(re.findall(r"^\s+trace\s", listed, re.MULTILINE)) == 1, listed
    assert "trace" not in create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"}).cli.commands


@postgres_only
def test_tracing_leaves_the_engine_as_it_found_it(db_url):
    """While tracing, the session is named `migration`; afterwards its name is
    back and no listener of the trace is left on the engine."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            original = conn.exec_driver_sql("SHOW application_name").scalar()
        with locktrace.Tracer(engine, "test") as tracer, engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (id int)")
            named = conn.exec_driver_sql("SHOW application_name").scalar()
        assert named == "migration"
        assert [lock.label() for lock in only(tracer.trace, "CREATE TABLE t").locks] == [
            "t (new): ACCESS EXCLUSIVE"]
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW application_name").scalar() == original
        for _, name, fn in tracer._listeners:
            assert not sa.event.contains(engine, name, fn), name
    finally:
        engine.dispose()


def test_durations_show_as_three_buckets():
    """Text output shows a duration as one of BUCKETS, by its lower bound."""
    assert [locktrace.bucket(s) for s in (0, 0.099, 0.1, 0.999, 1.0, 3600)] == [
        "< 0.1 s", "< 0.1 s", "0.1–1 s", "0.1–1 s", "≥ 1 s", "≥ 1 s"]


# -- outside a transaction: exact locks, each its own transaction ---------------------------

QUICK_AND_BATCHED = '''
    bind = op.get_bind()
    with op.get_context().autocommit_block():
        op.execute("ALTER TABLE deals ALTER COLUMN title SET DEFAULT ''")
        for low in range(0, 200, 50):
            bind.execute(sa.text("UPDATE deals SET amount = amount WHERE id > :low AND id <= :high"),
                         {"low": low, "high": low + 50})
'''


@postgres_only
def test_a_quick_statement_outside_a_transaction_shows_its_locks_every_time(project):
    """A millisecond ALTER in an autocommit_block is quicker than the watcher's look: it
    runs in a one-statement transaction of its own (what autocommit gives it), so its
    ACCESS EXCLUSIVE is asked for before its COMMIT lets it go; and the app can use the
    table again as soon as that statement ends, which the steady view says."""
    project.revision(QUICK_AND_BATCHED)
    for _ in range(3):  # the same every time, not when a poll happens to fall in it
        proc, trace = project.trace("--no-times")
        default = only(trace, "ALTER TABLE deals ALTER COLUMN title SET DEFAULT")
        assert default.wrapped and default.transaction is None
        assert locks(default) == [("deals", "ACCESS EXCLUSIVE")]
        assert row(proc.output, "ALTER TABLE deals ALTER COLUMN title SET DEFAULT")[-2:] == [
            "this statement", "reads, writes"]
        assert project.flask("db", "downgrade", "base").returncode == 0
    with _engine(project.url, "check").connect() as conn:  # nothing was left open
        assert conn.exec_driver_sql("SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in%%' "
                                    "AND datname = current_database()").scalar() == 0


@postgres_only
def test_a_batched_backfill_is_one_row_of_its_repeats(project):
    """Four batches of one UPDATE (its bounds aside) make one row, `(×4)`, with their locks."""
    project.revision(QUICK_AND_BATCHED)
    proc, trace = project.trace("--no-times")
    updates = [s for s in trace.shown() if s.sql.startswith("UPDATE deals")]
    assert len(updates) == 4 and len(trace.groups()) == 2
    cells = row(proc.output, "UPDATE deals SET amount = amount")
    assert cells[2].endswith("(×4)") and cells[3] == "deals: ROW EXCLUSIVE", cells
    assert trace.verdict(times=False) == ("each lock that blocks reads or writes was held for its "
                                          "own statement only (#1)")


@postgres_only
def test_the_steady_view_says_how_far_a_lock_was_held_without_times(project):
    """In one transaction, a lock taken by the first statement is held through the last:
    the steady view (what a notebook stores) says so in statements, with no time in it."""
    project.revision('    op.execute("ALTER TABLE deals ALTER COLUMN title SET DEFAULT \'\'")\n'
                     '    op.execute("UPDATE deals SET amount = amount + 1")\n'
                     '    op.execute("SELECT 1")\n')
    proc, trace = project.trace("--no-times")
    assert row(proc.output, "ALTER TABLE deals ALTER COLUMN title")[-2:] == [
        "to COMMIT, through #3", "reads, writes"]
    assert trace.verdict(times=False) == (
        'ACCESS EXCLUSIVE on deals held from #1 "ALTER TABLE deals ALTER COLUMN title SET DEFAULT '
        '\'\'" to COMMIT, through #3: every read and write of deals waited until then')
    assert trace.verdict(times=False) in proc.output
    assert not re.search(r"\d s\b|< 0\.1", proc.output.split("Running upgrade")[-1]), proc.output


RETRYING_ENV = """
    from sqlalchemy.exc import OperationalError

    connectable = get_engine()
    for attempt in range(30):  # lab 07's env.py, shorter: lock_timeout, then run it again
        try:
            with connectable.connect() as connection:
                context.configure(connection=connection, target_metadata=get_metadata(), **conf_args)
                with context.begin_transaction():
                    connection.exec_driver_sql("SET lock_timeout = '100ms'")
                    context.run_migrations()
            return
        except OperationalError as exc:
            if exc.orig.pgcode != "55P03":
                raise
        time.sleep(0.05)
"""


@postgres_only
def test_the_steady_view_shows_the_attempt_that_got_through_the_same_however_many_gave_up(project):
    """An env.py that retries after a lock timeout runs the migration again; how many
    attempts give up depends on the app's traffic. The steady view (what a notebook
    stores) shows the attempt that got through, numbered as if it were the only one;
    the saved trace and the view with times keep every attempt."""
    env = project.folder / "migrations" / "env.py"
    source = env.read_text()
    start = source.index("    connectable = get_engine()")
    end = source.index("if context.is_offline_mode()")
    env.write_text("import time\n" + source[:start] + RETRYING_ENV + "\n\n" + source[end:])
    project.revision('    op.execute("ALTER TABLE deals ALTER COLUMN title SET DEFAULT \'\'")\n'
                     '    op.execute("UPDATE deals SET amount = amount + 1")\n')
    with while_migration_runs(project.url, "ALTER TABLE deals ALTER COLUMN title%", lambda: True,
                              holding="SELECT count(*) FROM deals", hold=0.6):
        retried, trace = project.trace("--no-times")
    gave_up = [s for s in trace.steps if s.failed and locktrace.LOCK_TIMEOUT in s.failed]
    assert len(gave_up) >= 2, [s.failed for s in trace.steps]
    assert trace.table().count("failed") == len(gave_up)  # the view with times shows each one
    assert project.flask("db", "downgrade").returncode == 0
    clean, _ = project.trace("--no-times")

    def table(output):
        return output[output.index("#  tx"):]
    assert table(retried.output) == table(clean.output), retried.output
    assert 'held from #2 "ALTER TABLE deals ALTER COLUMN title' in table(clean.output)
    assert "to COMMIT, through #3" in table(clean.output)


@postgres_only
def test_quiet_prints_only_what_flask_db_upgrade_prints(project):
    project.revision('    op.execute("SELECT 1")\n')
    proc, trace = project.trace("--quiet")
    assert "locks taken" not in proc.output and len(trace.shown()) == 1
    assert [line for line in proc.output.splitlines() if not line.startswith("INFO")] == []
