"""Bad input gets one clear line, a non-zero exit, no traceback, no password
echoed, and loses nothing: every case runs through the public commands and
counts the rows before and after."""
import shutil
import signal
import socket
import subprocess
import time

import pytest
import sqlalchemy as sa

from helpers import SAMPLE, SECRET, assert_one_line_error, count_rows, mariadb_reachable, run_flask
from tools import scenarios


# -- the database URL -------------------------------------------------------

@pytest.mark.parametrize("url, expected", [
    ("not-a-url", "DATABASE_URL is not a database URL"),
    (f"postgresql://postgres:{SECRET}@127.0.0.1:notaport/x", "DATABASE_URL is not a database URL"),
    (f"mongodb://root:{SECRET}@127.0.0.1/x", "unsupported scheme 'mongodb'"),
    (f"postgresql://postgres:{SECRET}@127.0.0.1:1/x", "Connection refused"),
], ids=["malformed", "bad-port", "unknown-scheme", "refused"])
def test_bad_database_url(url, expected):
    proc = run_flask("createdb", env={"DATABASE_URL": url})
    assert_one_line_error(proc, expected)


def test_unreachable_host_times_out_in_seconds():
    """A host that accepts the TCP handshake but never answers (a firewalled
    or hung server) stops after the kit's connect timeout, not minutes."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes handshakes; nobody ever replies
        port = silent.getsockname()[1]
        proc = run_flask("createdb", env={
            "DATABASE_URL": f"postgresql://postgres:{SECRET}@127.0.0.1:{port}/x"}, timeout=30)
    assert_one_line_error(proc, "timeout", "is the server running?")


@pytest.mark.skipif(not mariadb_reachable(), reason="no MariaDB on 127.0.0.1:3306 for a password check")
def test_wrong_password():
    # PostgreSQL here trusts local users whatever the password; MariaDB checks it
    proc = run_flask("createdb", env={"DATABASE_URL": f"mysql://root:{SECRET}@127.0.0.1:3306/x"})
    assert_one_line_error(proc, "Access denied", "check the user and password")


def test_missing_database(tmp_path):
    proc = run_flask("dumpdata", str(tmp_path / "DATA"), env={"LABAPP_DATABASE": "no_such_database_here"})
    assert_one_line_error(proc, "does not exist", "flask createdb")


def test_createdb_twice(db_name):
    proc = run_flask("createdb", env={"LABAPP_DATABASE": db_name})
    assert_one_line_error(proc, f"database {db_name!r} already exists")


def test_dropdb_on_a_missing_database():
    proc = run_flask("dropdb", "--yes", env={"LABAPP_DATABASE": "no_such_database_here"})
    assert_one_line_error(proc, "does not exist: nothing to drop")


def test_dropdb_answered_no_keeps_everything(schema, db_name, db_url):
    run_flask("loaddata", str(SAMPLE), env={"LABAPP_DATABASE": db_name})
    proc = run_flask("dropdb", env={"LABAPP_DATABASE": db_name}, input="n\n")
    assert proc.returncode != 0
    assert "Aborted" in proc.output
    assert count_rows(db_url, "contacts") == 6


# -- DATA folders: every bad one loads nothing ---------------------------------

def _bad_data(tmp_path, filename, content):
    data = tmp_path / "DATA"
    shutil.copytree(SAMPLE, data)
    if content is None:
        (data / filename).unlink()
    else:
        mode = "wb" if isinstance(content, bytes) else "w"
        with open(data / filename, mode) as f:
            f.write(content)
    return data


LOADDATA_CASES = {
    "malformed-row": ("deals.csv", "id,contact_id,title,amount,currency\n1,1,Too few\n",
                      ["deals.csv line 2", "3 values for 5 columns"]),
    "broken-quote": ("contacts.csv", 'id,name,email\n1,"Ada,ada@example.com\n',
                     ["contacts.csv", "malformed CSV"]),
    "not-utf8": ("contacts.csv", "id,name,email\n1,Zo\xeb,zoe@example.com\n".encode("latin-1"),
                 ["contacts.csv", "not UTF-8"]),
    "empty-file": ("deals.csv", "", ["deals.csv", "empty file"]),
    "unknown-table": ("invoices.csv", "id,total\n1,10\n", ["invoices.csv", "no table 'invoices'"]),
    "unknown-column": ("contacts.csv", "id,name,email,phone\n9,Zoe,zoe@example.com,555\n",
                       ["contacts.csv", "no column 'phone'"]),
    "foreign-key": ("deals.csv", "id,contact_id,title,amount,currency\n1,99,Ghost deal,1.00,USD\n",
                    ["deals.csv line 2", "foreign key"]),
    "duplicate-key": ("contacts.csv",
                      "id,name,email\n1,Ada,ada@example.com\n1,Ada again,ada2@example.com\n",
                      ["contacts.csv line 3", "duplicate key"]),
    "bad-enum-value": ("deals.csv", "id,contact_id,title,amount,currency\n1,1,Coins,1.00,DOGE\n",
                       ["deals.csv line 2", "DOGE"]),
    "not-null": ("contacts.csv", "id,name,email\n1,,ada@example.com\n",
                 ["contacts.csv line 2", "null value"]),
}


@pytest.mark.parametrize("case", LOADDATA_CASES)
def test_bad_data_loads_nothing(case, schema, db_name, db_url, tmp_path):
    filename, content, expected = LOADDATA_CASES[case]
    data = _bad_data(tmp_path, filename, content)
    proc = run_flask("loaddata", str(data), env={"LABAPP_DATABASE": db_name})
    assert_one_line_error(proc, *expected)
    for table in ("contacts", "deals", "contact_events"):
        assert count_rows(db_url, table) == 0, table


def test_loaddata_missing_folder(schema, db_name, tmp_path):
    proc = run_flask("loaddata", str(tmp_path / "nope"), env={"LABAPP_DATABASE": db_name})
    assert_one_line_error(proc, "no DATA folder at")


def test_loaddata_into_a_database_with_rows_adds_nothing(schema, db_name, db_url):
    run_flask("loaddata", str(SAMPLE), env={"LABAPP_DATABASE": db_name})
    proc = run_flask("loaddata", str(SAMPLE), env={"LABAPP_DATABASE": db_name})
    assert_one_line_error(proc, "contacts.csv line 2", "duplicate key")
    assert count_rows(db_url, "deals") == 10


# -- the embedded server's data directory ----------------------------------------

def test_server_data_path_with_a_space(tmp_path):
    proc = run_flask("createdb", env={"DATABASE_URL": None,
                                      "LABAPP_PGDATA": str(tmp_path / "My Projects" / "pg")})
    assert_one_line_error(proc, "must not contain spaces")


def test_no_free_disk_space_for_the_server(open_tmp):
    """A full disk, simulated with a 16 MB tmpfs (needs root and mount rights)."""
    small = open_tmp / "small"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(small)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here to simulate a full disk")
    try:
        proc = run_flask("createdb", env={"DATABASE_URL": None, "LABAPP_PGDATA": str(small / "pg")})
        assert_one_line_error(proc, "free", "LABAPP_PGDATA")
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)


# -- Ctrl-C --------------------------------------------------------------------------

def test_ctrl_c_during_loaddata_loads_nothing(schema, db_name, db_url, tmp_path):
    data = tmp_path / "DATA"
    data.mkdir()
    rows = "".join(f"{i},Person {i},p{i}@example.com\n" for i in range(1, 200_001))
    (data / "contacts.csv").write_text("id,name,email\n" + rows)
    env = scenarios.environment(LABAPP_DATABASE=db_name)
    # a terminal's Ctrl-C: SIGINT with its default meaning (a shell's background
    # job would inherit it ignored, and Python would then never see it)
    proc = subprocess.Popen(["flask", "--app", "labapp", "loaddata", str(data)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 30
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    # wait until the load is under way (its transaction holds a lock on contacts)
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            busy = conn.execute(sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = :db AND query LIKE 'INSERT%'"
            ), {"db": db_name}).scalar()
        if busy:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=30)
    proc.output = output
    assert proc.returncode != 0
    assert "Traceback" not in output
    assert output.strip().splitlines()[-1] == "Aborted!"
    assert count_rows(db_url, "contacts") == 0
