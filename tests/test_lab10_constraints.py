"""Lab 10's constraints and type changes: the claims its prose makes beyond what
its cells show, on the real server, with its own revisions (tests/chains/lab10.patch).

* `NOT VALID` leaves the rows already there unchecked (`convalidated` false);
  from its COMMIT on, an insert is checked, and so is an update that changes
  the key; an update of another column of an old orphan is not. `VALIDATE`
  refuses while an orphan is left.
* Shipped in one `flask db upgrade`, `0003` (NOT VALID) and `0004` (VALIDATE in
  `autocommit_block()`): the write-blocking lock of `0003` is gone before the
  scan starts, and the scan holds no lock that blocks the app.
* A failed `CREATE UNIQUE INDEX CONCURRENTLY` leaves an INVALID index of its
  name; the same statement again fails with "already exists", and with `IF NOT
  EXISTS` it "succeeds", skipping the build: the index stays INVALID.
  `DROP INDEX CONCURRENTLY IF EXISTS` first makes the retry build it.
* Which type changes rewrite the table (a new relfilenode, what the trace's
  `rewrite` column reads): a wider varchar and varchar -> text do not, nor a
  USING that is only the cast; a shorter varchar, a USING that computes
  (`trim(title)`), integer -> bigint and text -> integer do.
* `Report.held_up` counts the requests a lock held up, and no others.
"""
import pytest
import sqlalchemy as sa

from helpers import flask_in, postgres_only, rows
from labapp.live import locktrace, traffic
from labapp.server import database

pytestmark = [postgres_only,
              pytest.mark.filterwarnings("ignore:'get_engine' is deprecated:DeprecationWarning")]

ORPHAN = "INSERT INTO deals (contact_id, title, amount, currency) VALUES (:c, :t, 1, 'USD')"


def error_of(url, query, **params):
    """The first line of the error `query` raises ('' if it runs)."""
    try:
        rows(url, query, **params)
    except sa.exc.DBAPIError as exc:
        return str(exc.orig).splitlines()[0]
    return ""


def test_not_valid_checks_new_keys_only_and_validate_refuses_an_orphan(chain, db_url):
    ws = chain("lab10")
    flask_in(ws, "db", "upgrade", "0002", check=True)
    flask_in(ws, "loaddata", check=True)
    rows(db_url, ORPHAN, c=999, t="Old orphan")
    flask_in(ws, "db", "upgrade", "0003", check=True)

    assert rows(db_url, "SELECT convalidated FROM pg_constraint"
                        " WHERE conname = 'deals_contact_id_fkey'") == [(False,)]
    assert rows(db_url, "SELECT count(*) FROM deals WHERE contact_id = 999") == [(1,)]
    assert "violates foreign key constraint" in error_of(db_url, ORPHAN, c=998, t="New orphan")
    # an update that leaves the key alone is not checked; one that changes it is
    assert error_of(db_url, "UPDATE deals SET title = 'Renamed' WHERE contact_id = 999") == ""
    assert "violates foreign key constraint" in error_of(
        db_url, "UPDATE deals SET contact_id = 997 WHERE contact_id = 999")

    proc = flask_in(ws, "db", "upgrade")
    assert proc.returncode != 0 and "ForeignKeyViolation" in proc.output, proc.output
    rows(db_url, "DELETE FROM deals WHERE contact_id = 999")
    flask_in(ws, "db", "upgrade", "0004", check=True)
    assert rows(db_url, "SELECT convalidated FROM pg_constraint"
                        " WHERE conname = 'deals_contact_id_fkey'") == [(True,)]


def test_not_valid_and_validate_in_one_upgrade_scan_after_the_lock_is_gone(chain, db_url, tmp_path):
    ws = chain("lab10")
    flask_in(ws, "db", "upgrade", "0002", check=True)
    flask_in(ws, "loaddata", check=True)
    saved = tmp_path / "both.json"
    flask_in(ws, "trace", "upgrade", "0004", "--quiet", "--save", str(saved), check=True)
    trace = locktrace.load(saved)
    steps = [s for s in trace.steps if not s.bookkeeping]
    add, validate = steps[0], steps[-1]
    assert "NOT VALID" in add.sql and "VALIDATE CONSTRAINT" in validate.sql
    blocking = [lock for lock in add.locks if "writes" in lock.blocks]
    assert {lock.name for lock in blocking} == {"deals", "contacts"}
    assert all(lock.end <= validate.start for lock in blocking)  # let go before the scan
    assert validate.transaction is None  # autocommit: its own transaction
    assert validate.locks and not any(lock.blocks for lock in validate.locks)


def test_a_failed_concurrent_build_leaves_an_invalid_index(db_url):
    engine = database.quick_engine(db_url)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")

            def run(sql):
                try:
                    conn.exec_driver_sql(sql)
                except sa.exc.DBAPIError as exc:
                    return type(exc.orig).__name__, str(exc.orig).splitlines()[0]
                return None

            def valid():
                return conn.exec_driver_sql(
                    "SELECT indisvalid FROM pg_index WHERE indexrelid = 'refs_key'::regclass").all()

            conn.exec_driver_sql("CREATE TABLE refs (ref text)")
            conn.exec_driver_sql("INSERT INTO refs VALUES ('a'), ('a'), ('b')")
            build = "CREATE UNIQUE INDEX CONCURRENTLY {}refs_key ON refs (ref)"
            assert run(build.format(""))[0] == "UniqueViolation"
            assert valid() == [(False,)]
            failed = run(build.format(""))
            assert failed[0] == "DuplicateTable" and "already exists" in failed[1]
            assert run(build.format("IF NOT EXISTS ")) is None  # "succeeds"...
            assert valid() == [(False,)]                        # ...and skipped the build
            conn.exec_driver_sql("DELETE FROM refs WHERE ctid = (SELECT max(ctid) FROM refs"
                                 " WHERE ref = 'a')")
            assert run("DROP INDEX CONCURRENTLY IF EXISTS refs_key") is None
            assert run(build.format("")) is None
            assert valid() == [(True,)]
    finally:
        engine.dispose()


REWRITES = [
    ("title TYPE varchar(300)", False),
    ("title TYPE text", False),
    ("title TYPE varchar(100)", True),
    ("title TYPE varchar(300) USING title::varchar(300)", False),  # the cast alone: same as none
    ("title TYPE varchar(300) USING trim(title)", True),
    ("id TYPE bigint", True),
    ("code TYPE integer USING code::integer", True),
]


@pytest.mark.parametrize("change, rewrites", REWRITES)
def test_which_type_changes_rewrite_the_table(db_url, change, rewrites):
    rows(db_url, "CREATE TABLE t (id integer PRIMARY KEY, title varchar(200), code text)")
    rows(db_url, "INSERT INTO t SELECT i, 'title ' || i, i::text FROM generate_series(1, 100) i")
    before = rows(db_url, "SELECT pg_relation_filenode('t')")
    rows(db_url, f"ALTER TABLE t ALTER COLUMN {change}")
    assert (rows(db_url, "SELECT pg_relation_filenode('t')") != before) is rewrites


def report(*requests):
    return traffic.Report([traffic.Request(start, latency, 200, "u", "v1", path, method)
                           for start, latency, path, method in requests], t0=100.0)


def test_held_up_counts_the_requests_a_lock_held_up():
    lock = (101.0, 102.0)  # held from 1 s to 2 s into the load
    load = report((0.5, 0.01, "/api/deals", "POST"),   # before it: not counted
                  (1.1, 0.01, "/api/deals", "POST"),   # its first quarter: the lock not sure yet
                  (1.3, 0.75, "/api/deals", "POST"),   # arrived during it, answered after
                  (1.5, 0.60, "/api/deals", "POST"),   # the same
                  (1.6, 0.01, "/api/deals?limit=5", "GET"),  # a read that went through
                  (1.9, 0.02, "/api/deals", "POST"))   # a write that went through
    assert load.held_up(lock, writes=True) == (3, 2)
    assert load.held_up(lock, writes=False) == (1, 0)
    assert load.held_up(None) == (0, 0)


def test_blocking_is_the_longest_lock_that_blocks_the_operation():
    step = locktrace.Step(0, "ALTER TABLE deals ...", 1.0, 3.0)
    step.locks = [locktrace.Lock("table", "deals", "SHARE UPDATE EXCLUSIVE", 1.0, 5.0),
                  locktrace.Lock("table", "deals", "SHARE ROW EXCLUSIVE", 1.0, 3.0),
                  locktrace.Lock("table", "contacts", "ACCESS EXCLUSIVE", 1.0, 4.0)]
    trace = locktrace.Trace("upgrade", 0.0, steps=[step])
    assert trace.blocking("deals", "writes") == (1.0, 3.0)
    assert trace.blocking("deals", "reads") is None
    assert trace.blocking("contacts", "reads") == (1.0, 4.0)
    # a statement that first waited for its lock (the app's transactions in flight) held it
    # only from the end of its wait
    trace.waits = [locktrace.Wait(0, "deals", "SHARE ROW EXCLUSIVE", 1.0, 1.5)]
    assert trace.blocking("deals", "writes") == (1.5, 3.0)

