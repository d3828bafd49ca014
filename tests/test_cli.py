"""The kit's commands on their happy paths, through Flask's test runner (the same
commands in this process); what only a real `flask` process shows (the one-line
error boundary, --help from the entry point) runs as a subprocess."""
import shutil

from helpers import SAMPLE, count_rows, rows, run_flask


def test_every_command_has_help():
    for command in ("createdb", "dropdb", "loaddata", "dumpdata", "pgserver", "replay-production",
                    "db"):
        proc = run_flask(command, "--help")
        assert proc.returncode == 0, proc.output
        assert "Usage: flask" in proc.output


def test_db_group_is_flask_migrates_commands(runner):
    from flask_migrate.cli import db as flask_migrate_db

    result = runner.invoke(args=["db", "--help"])
    assert result.exit_code == 0, result.output
    for name in flask_migrate_db.commands:
        assert f"  {name} " in result.output or f"  {name}\n" in result.output, name


def test_createdb_then_dropdb(runner, db_name):
    assert runner.invoke(args=["dropdb", "--yes"]).output == f"Dropped database {db_name!r}.\n"
    result = runner.invoke(args=["createdb"])
    assert result.exit_code == 0, result.output
    assert result.output == f"Created database {db_name!r}.\n"
    result = runner.invoke(args=["dropdb"], input="y\n")
    assert result.exit_code == 0, result.output
    assert result.output.endswith(f"Dropped database {db_name!r}.\n")


def test_createdb_on_sqlite_says_none_is_needed(tmp_path):
    proc = run_flask("createdb", env={"DATABASE_URL": f"sqlite:///{tmp_path}/crm.sqlite"})
    assert proc.returncode == 0, proc.output
    assert "SQLite creates its database file on first use" in proc.output


def test_loaddata_fills_tables_in_foreign_key_order(schema, runner, db_url):
    result = runner.invoke(args=["loaddata", str(SAMPLE)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "Loaded    6 rows into contacts",
        "Loaded    8 rows into contact_events",
        "Loaded   10 rows into deals",
    ]
    assert count_rows(db_url, "deals") == 10


def test_loaddata_moves_sequences_past_loaded_ids(schema, runner, db_url):
    runner.invoke(args=["loaddata", str(SAMPLE)])
    new_id = rows(db_url, "INSERT INTO contacts (name, email) VALUES ('New', 'new@example.com') "
                          "RETURNING id")
    assert new_id == [(7,)]


def test_dumpdata_then_loaddata_round_trips(schema, runner, tmp_path):
    runner.invoke(args=["loaddata", str(SAMPLE)])
    result = runner.invoke(args=["dumpdata", str(tmp_path / "DATA")])
    assert result.exit_code == 0, result.output
    for name in ("contacts.csv", "deals.csv", "contact_events.csv"):
        assert (tmp_path / "DATA" / name).read_text() == (SAMPLE / name).read_text(), name


def test_loaddata_reads_DATA_in_the_current_folder_by_default(schema, runner, tmp_path,
                                                              monkeypatch):
    shutil.copytree(SAMPLE, tmp_path / "DATA")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(args=["loaddata"])
    assert result.exit_code == 0, result.output


def test_pgserver_status_reports_the_embedded_server():
    proc = run_flask("pgserver", "status", env={"DATABASE_URL": None})
    assert proc.returncode == 0, proc.output
    assert proc.output.startswith("embedded PostgreSQL: ")


def test_a_lab_error_is_one_line_and_debug_shows_the_traceback(db_name):
    proc = run_flask("createdb")
    assert proc.returncode == 1
    assert proc.output == f"Error: database {db_name!r} already exists: nothing to do " \
                          "(run `flask dropdb` first to start from scratch)\n"
    debug = run_flask("createdb", env={"LABAPP_DEBUG": "1"})
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.output
    assert debug.output.rstrip().endswith("(run `flask dropdb` first to start from scratch)")
