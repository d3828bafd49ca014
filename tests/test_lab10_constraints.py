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
* `SET NOT NULL` reads no row when a validated CHECK (col IS NOT NULL) proves it
  (the contract's swap), and scans the table without one.
* `Report.held_up` counts the requests a lock held up, and no others; `Trace.blocking`
  starts where the watcher first saw the lock granted.
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


def test_set_not_null_reads_no_row_once_a_validated_check_proves_it(db_url):
    """The swap of lab 10's expand/contract: `SET NOT NULL` under ACCESS EXCLUSIVE
    scans the table, unless a validated CHECK (col IS NOT NULL) proves it already
    (PostgreSQL says which at DEBUG1)."""
    rows(db_url, "CREATE TABLE t (a bigint, b bigint)")
    rows(db_url, "INSERT INTO t SELECT i, i FROM generate_series(1, 1000) i")
    rows(db_url, "ALTER TABLE t ADD CONSTRAINT t_b_not_null CHECK (b IS NOT NULL) NOT VALID")
    rows(db_url, "ALTER TABLE t VALIDATE CONSTRAINT t_b_not_null")
    engine = database.quick_engine(db_url)
    connection = engine.raw_connection()  # the DBAPI connection keeps the server's notices
    try:
        cursor = connection.cursor()
        cursor.execute("SET client_min_messages = debug1")
        notices = connection.dbapi_connection.notices
        del notices[:]
        cursor.execute("ALTER TABLE t ALTER COLUMN b SET NOT NULL")
        proved = list(notices)
        del notices[:]
        cursor.execute("ALTER TABLE t ALTER COLUMN a SET NOT NULL")
        scanned = list(notices)
        connection.rollback()
    finally:
        connection.close()
        engine.dispose()
    assert any('"t.b" are sufficient to prove that it does not contain nulls' in n
               for n in proved), proved
    assert not any("verifying table" in n for n in proved), proved
    assert any('verifying table "t"' in n for n in scanned), scanned


def report(*requests):
    return traffic.Report([traffic.Request(start, latency, 200, "u", "v1", path, method)
                           for start, latency, path, method in requests], t0=100.0)


def test_held_up_counts_the_requests_a_lock_held_up():
    lock = (101.0, 102.0)  # held from 1 s to 2 s into the load
    load = report((0.5, 0.01, "/api/deals", "POST"),   # before it: not counted
                  (0.99, 0.5, "/api/deals", "POST"),   # before it too, though answered during it
                  (1.3, 0.75, "/api/deals", "POST"),   # arrived during it, answered after
                  (1.5, 0.60, "/api/deals", "POST"),   # the same
                  (1.6, 0.01, "/api/deals?limit=5", "GET"),  # a read that went through
                  (1.9, 0.02, "/api/deals", "POST"),   # a write that went through
                  (2.0, 0.01, "/api/deals", "POST"))   # after it: not counted
    assert load.held_up(lock, writes=True) == (3, 2)
    assert load.held_up(lock, writes=False) == (1, 0)
    assert load.held_up(None) == (0, 0)


def test_blocking_is_the_longest_lock_that_blocks_the_operation_from_when_it_was_surely_granted():
    step = locktrace.Step(0, "ALTER TABLE deals ...", 1.0, 3.0)
    step.locks = [locktrace.Lock("table", "deals", "SHARE UPDATE EXCLUSIVE", 1.0, 5.0, granted=1.1),
                  locktrace.Lock("table", "deals", "SHARE ROW EXCLUSIVE", 1.0, 3.5, granted=1.5),
                  locktrace.Lock("table", "contacts", "ACCESS EXCLUSIVE", 1.0, 4.0, granted=1.2)]
    trace = locktrace.Trace("upgrade", 0.0, steps=[step])
    # from the watcher's first look that saw it granted (it may have waited, or the server
    # may have been slow to get there), not from its statement's start
    assert trace.blocking("deals", "writes") == (1.5, 3.5)
    assert trace.blocking("deals", "reads") is None
    assert trace.blocking("contacts", "reads") == (1.2, 4.0)
    # never seen granted (a statement quicker than the watcher's poll): held for sure only
    # from its statement's end
    step.locks[1].granted = None
    assert trace.blocking("deals", "writes") == (3.0, 3.5)


def test_answered_during_counts_what_was_answered_within_a_mark():
    load = report((0.5, 0.01, "/api/deals", "POST"),   # before it
                  (1.1, 0.01, "/api/deals", "POST"),   # during it, answered during it
                  (1.5, 0.60, "/api/deals", "POST"),   # answered after it
                  (1.6, 0.01, "/api/deals?limit=5", "GET"))
    load.requests.append(traffic.Request(1.2, 0.01, 500, "u", "v1", "/api/deals", "POST"))  # failed
    load.marks = [("swap", 1.0, 2.0)]
    assert load.answered_during("swap", writes=True) == 1
    assert load.answered_during("swap", writes=False) == 1
    # an edit of a deal already gone is answered 404, a write like the others; the filters
    # keep only those (lab 10's batched delete: the deals a committed batch removed)
    load.requests.append(traffic.Request(1.3, 0.01, 404, "u", "v1", "/api/deals/7", "PATCH"))
    load.requests.append(traffic.Request(1.4, 0.01, 200, "u", "v1", "/api/deals/8", "PATCH"))
    assert load.answered_during("swap") == 3
    assert load.answered_during("swap", status=404) == 1
    assert load.answered_during("swap", paths=["/api/deals/8", "/api/deals/9"]) == 1
    assert load.answered_during("swap", status=404, paths=["/api/deals/8"]) == 0
