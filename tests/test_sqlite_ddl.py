"""What the labs say about SQLite, proved: its DDL is transactional, Python's
sqlite3 driver is why Alembic assumes otherwise, its ALTER TABLE cannot change
a column's type nor add a constraint (so batch mode copies the table), and the
kit's failure line there reads the file the app really uses.

None of these needs a server: SQLite files in a temporary folder.
"""
import contextlib
import sqlite3

import pytest
import sqlalchemy as sa
from alembic.ddl.sqlite import SQLiteImpl
from alembic.migration import MigrationContext
from alembic.operations import Operations

from helpers import assert_one_line_error, flask_in
from labapp.runtime import labs, workspace


def tables(path):
    # closing(): sqlite3's own `with` ends a transaction but leaves the connection
    # open (Python 3.13 warns when it is collected)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_sqlite_rolls_back_ddl_in_an_explicit_transaction(tmp_path):
    """SQLite itself: CREATE TABLE inside BEGIN ... ROLLBACK is undone."""
    path = tmp_path / "t.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)  # we send BEGIN ourselves
    conn.execute("BEGIN")
    conn.execute("CREATE TABLE t (x INTEGER)")
    conn.execute("ROLLBACK")
    conn.close()
    assert "t" not in tables(path)


def test_pythons_sqlite3_driver_opens_no_transaction_for_ddl(tmp_path):
    """Its default mode begins a transaction only before INSERT/UPDATE/DELETE/REPLACE:
    DDL before that is committed at once, DDL after it is rolled back with it."""
    path = tmp_path / "t.sqlite"
    conn = sqlite3.connect(path)  # the default, as SQLAlchemy's pysqlite dialect uses it
    conn.execute("CREATE TABLE before_any_write (x INTEGER)")
    conn.execute("INSERT INTO before_any_write VALUES (1)")  # opens a transaction
    conn.execute("CREATE TABLE after_a_write (x INTEGER)")
    conn.rollback()
    conn.close()
    assert tables(path) == {"before_any_write"}


def test_alembic_assumes_non_transactional_ddl_on_sqlite_only():
    from alembic.ddl.postgresql import PostgresqlImpl

    assert SQLiteImpl.transactional_ddl is False
    assert PostgresqlImpl.transactional_ddl is True


@pytest.mark.parametrize("statement", [
    "ALTER TABLE deals ADD CONSTRAINT uq_deals_title UNIQUE (title)",
    "ALTER TABLE deals ALTER COLUMN title TYPE VARCHAR(100)",
])
def test_sqlite_alter_table_cannot_add_a_constraint_nor_change_a_type(tmp_path, statement):
    conn = sqlite3.connect(tmp_path / "t.sqlite")
    conn.execute("CREATE TABLE deals (id INTEGER PRIMARY KEY, title VARCHAR(200))")
    with pytest.raises(sqlite3.OperationalError, match="syntax error"):
        conn.execute(statement)
    conn.close()


def batch_statements(tmp_path, change):
    """The SQL a batch_alter_table block sends to SQLite for `change(batch_op)`."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'b.sqlite'}")
    sent = []
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE deals (id INTEGER PRIMARY KEY, title VARCHAR(200))")
        sa.event.listen(conn, "before_cursor_execute",
                        lambda *args: sent.append(" ".join(args[2].split())))
        with Operations(MigrationContext.configure(conn)).batch_alter_table("deals") as batch_op:
            change(batch_op)
    engine.dispose()
    return sent


def test_batch_mode_on_sqlite_adds_a_column_in_place(tmp_path):
    sent = batch_statements(tmp_path, lambda op: op.add_column(sa.Column("stage", sa.String(4))))
    assert [s for s in sent if not s.startswith("PRAGMA")] == [
        "ALTER TABLE deals ADD COLUMN stage VARCHAR(4)"]


def test_batch_mode_on_sqlite_copies_the_table_to_add_a_constraint(tmp_path):
    sent = batch_statements(tmp_path, lambda op: op.create_unique_constraint("uq_title", ["title"]))
    assert any(s.startswith("CREATE TABLE _alembic_tmp_deals") for s in sent), sent
    assert any(s.startswith("INSERT INTO _alembic_tmp_deals") and "SELECT" in s for s in sent)
    assert "DROP TABLE deals" in sent and "ALTER TABLE _alembic_tmp_deals RENAME TO deals" in sent


def test_an_enum_is_a_plain_varchar_on_sqlite(tmp_path):
    """Lab 01's revisions on SQLite: no type, no CHECK; any string goes in."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'e.sqlite'}")
    deals = sa.Table("deals", sa.MetaData(), sa.Column("currency", sa.Enum(
        "USD", "EUR", "AED", "GBP", name="dealcurrency")))
    with engine.begin() as conn:
        deals.create(conn)
        ddl = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'deals'").scalar()
        conn.exec_driver_sql("INSERT INTO deals VALUES ('BTC')")
    engine.dispose()
    assert "currency VARCHAR(3)" in ddl and "CHECK" not in ddl


def test_a_failed_upgrade_on_sqlite_reports_the_apps_own_file(tmp_path):
    """Flask-SQLAlchemy keeps a relative sqlite:/// file in the instance folder; the
    failure line reads alembic_version there (not a new empty file beside app.py)."""
    folder = workspace.build(tmp_path / "ws", labs.get("lab02")[0])  # revision 0001
    (folder / "migrations" / "versions" / "0002_x.py").write_text(
        'from alembic import op\nimport sqlalchemy as sa\n'
        'revision = "0002"\ndown_revision = "0001"\n\n\n'
        'def upgrade():\n    op.create_table("contacts", sa.Column("id", sa.Integer))\n\n\n'
        'def downgrade():\n    pass\n')
    env = {"DATABASE_URL": "sqlite:///crm.sqlite"}
    assert flask_in(folder, "db", "upgrade", "0001", env=env).returncode == 0
    proc = flask_in(folder, "db", "upgrade", env=env)
    assert_one_line_error(proc, "table contacts already exists",
                          "Alembic runs SQLite's DDL without a transaction",
                          "the database is now at 0001.")
    assert not (folder / "crm.sqlite").exists()
    assert (folder / "instance" / "crm.sqlite").exists()
