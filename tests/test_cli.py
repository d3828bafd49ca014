"""The kit's commands on their happy paths, run as a user runs them."""
import shutil

from conftest import ROOT, count_rows, run_flask

SAMPLE = ROOT / "labapp" / "data" / "sample"


def test_every_command_has_help():
    for command in ("createdb", "dropdb", "loaddata", "dumpdata", "pgserver"):
        proc = run_flask(command, "--help")
        assert proc.returncode == 0, proc.output
        assert "Usage: flask" in proc.output


def test_createdb_then_dropdb(db_name):
    run_flask("dropdb", "--yes", env={"LABAPP_DATABASE": db_name})
    proc = run_flask("createdb", env={"LABAPP_DATABASE": db_name})
    assert proc.returncode == 0, proc.output
    assert proc.output == f"Created database {db_name!r}.\n"
    proc = run_flask("dropdb", env={"LABAPP_DATABASE": db_name}, input="y\n")
    assert proc.returncode == 0, proc.output
    assert proc.output.endswith(f"Dropped database {db_name!r}.\n")


def test_createdb_on_sqlite_says_none_is_needed(tmp_path):
    proc = run_flask("createdb", env={"DATABASE_URL": f"sqlite:///{tmp_path}/crm.sqlite"})
    assert proc.returncode == 0, proc.output
    assert "SQLite creates its database file on first use" in proc.output


def test_loaddata_fills_tables_in_foreign_key_order(schema, db_name, db_url):
    proc = run_flask("loaddata", str(SAMPLE), env={"LABAPP_DATABASE": db_name})
    assert proc.returncode == 0, proc.output
    assert proc.output.splitlines() == [
        "Loaded    6 rows into contacts",
        "Loaded    8 rows into contact_events",
        "Loaded   10 rows into deals",
    ]
    assert count_rows(db_url, "deals") == 10


def test_loaddata_moves_sequences_past_loaded_ids(schema, db_name, db_url):
    import sqlalchemy as sa

    run_flask("loaddata", str(SAMPLE), env={"LABAPP_DATABASE": db_name})
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        new_id = conn.execute(sa.text(
            "INSERT INTO contacts (name, email) VALUES ('New', 'new@example.com') RETURNING id"
        )).scalar()
    assert new_id == 7


def test_dumpdata_then_loaddata_round_trips(schema, db_name, db_url, tmp_path):
    run_flask("loaddata", str(SAMPLE), env={"LABAPP_DATABASE": db_name})
    proc = run_flask("dumpdata", str(tmp_path / "DATA"), env={"LABAPP_DATABASE": db_name})
    assert proc.returncode == 0, proc.output
    for name in ("contacts.csv", "deals.csv", "contact_events.csv"):
        assert (tmp_path / "DATA" / name).read_text() == (SAMPLE / name).read_text(), name


def test_loaddata_reads_DATA_in_the_current_folder_by_default(schema, db_name, tmp_path):
    shutil.copytree(SAMPLE, tmp_path / "DATA")
    proc = run_flask("loaddata", cwd=tmp_path, env={"LABAPP_DATABASE": db_name})
    assert proc.returncode == 0, proc.output


def test_pgserver_status_reports_the_embedded_server():
    proc = run_flask("pgserver", "status", env={"DATABASE_URL": None})
    assert proc.returncode == 0, proc.output
    assert proc.output.startswith("embedded PostgreSQL: ")
