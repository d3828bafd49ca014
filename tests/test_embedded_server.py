"""The embedded PostgreSQL: start, attach, stop, and recovery after crashes.

Everything here runs on a server of its own (LABAPP_PGDATA = a temporary,
space-free folder), in real subprocesses, so the shared server that labs
and the other tests use is never stopped or killed.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import psutil
import pytest

from helpers import ROOT, open_folder, unusable_data_folder
from tools import scenarios


def our_server(pgdata, **changes):
    """The environment of a process that uses the embedded server at `pgdata`."""
    return scenarios.environment("DATABASE_URL", LABAPP_PGDATA=pgdata, **changes)


def run(code_or_args, pgdata, timeout=60, **more_env):
    """`python -c CODE` (a str) or `flask --app labapp ARGS` (a list) on our server."""
    args = ([sys.executable, "-c", code_or_args] if isinstance(code_or_args, str)
            else ["flask", "--app", "labapp", *code_or_args])
    return scenarios.run(args, env=our_server(pgdata, **more_env), timeout=timeout)


def postmaster_pid(pgdata):
    return int((pgdata / "postmaster.pid").read_text().split()[0])


def our_postgres(pgdata):
    """postgres processes serving our pgdata (the postmaster and its children)."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline", "ppid"]):
        if proc.info["name"] == "postgres" and str(pgdata) in " ".join(proc.info["cmdline"] or []):
            found.append(proc)
    return found


ANSWER = ("from labapp.server import pgserver; import psycopg2; uri = pgserver.server_uri(); "
          "conn = psycopg2.connect(uri, connect_timeout=3); cur = conn.cursor(); "
          "cur.execute('SELECT pg_backend_pid() > 0'); print('answers', cur.fetchone()[0])")


@pytest.fixture(scope="module")
def pgdata():
    """A server of our own, cold-started once for this module."""
    top = open_folder("lpg-")
    path = top / "pg"
    first = run(["pgserver", "start"], path)
    assert first.returncode == 0, first.output
    yield path
    run(["pgserver", "stop"], path)
    for proc in our_postgres(path):  # only if stop failed: never leave one behind
        proc.kill()
    shutil.rmtree(top, ignore_errors=True)


def test_start_attach_stop(pgdata):
    """Start (or attach), a second process attaches to the SAME postmaster, stop, start."""
    assert run(["pgserver", "start"], pgdata).returncode == 0
    pid = postmaster_pid(pgdata)
    attached = run(ANSWER, pgdata)
    assert attached.output.strip() == "answers True", attached.output
    assert postmaster_pid(pgdata) == pid
    status = run(["pgserver", "status"], pgdata)
    assert status.output.startswith("embedded PostgreSQL: running"), status.output

    stopped = run(["pgserver", "stop"], pgdata)
    assert stopped.output.strip() == "embedded PostgreSQL: stopped", stopped.output
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not (pgdata / "postmaster.pid").exists()
    # (`flask pgserver stop|status` again would start it: create_app resolves the
    # embedded URL, which starts the server, before the command runs)

    again = run(ANSWER, pgdata)  # any use starts it again
    assert again.output.strip() == "answers True", again.output


def test_recovers_after_killed_postmaster(pgdata):
    """kill -9 of the postmaster leaves a stale postmaster.pid; the next
    server_uri() starts a new server without a manual step."""
    assert run(ANSWER, pgdata).returncode == 0
    pid = postmaster_pid(pgdata)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10  # its children notice the dead postmaster and exit
    while [p for p in our_postgres(pgdata) if p.status() != psutil.STATUS_ZOMBIE]:
        assert time.monotonic() < deadline, "postgres children outlived their postmaster"
        time.sleep(0.05)
    assert postmaster_pid(pgdata) == pid  # the stale file is still there
    # and the dead postmaster may still be a zombie (PID 1 reaps late in containers):
    # its socket lock file then blocks a plain restart; server_uri() must cope

    recovered = run(ANSWER, pgdata)
    assert recovered.output.strip() == "answers True", recovered.output
    assert postmaster_pid(pgdata) != pid


def test_recovers_after_killed_clients(pgdata):
    """Clients killed with SIGKILL: the wheel would keep their pids in .handle_pids.json
    for good (its auto-stop then never happens), but a process that finds the server
    running attaches without the wheel and registers nothing. The server keeps
    serving, stops on request and starts again."""
    clients = [subprocess.Popen(
        [sys.executable, "-c", "from labapp.server import pgserver; pgserver.server_uri(); "
                               "print('up', flush=True); import time; time.sleep(120)"],
        cwd=ROOT, env=our_server(pgdata), stdout=subprocess.PIPE,
        text=True) for _ in range(2)]
    try:
        for client in clients:
            assert client.stdout.readline().strip() == "up"
    finally:
        for client in clients:
            client.send_signal(signal.SIGKILL)
            client.wait()
            client.stdout.close()
    handles = pgdata / ".handle_pids.json"
    registered = set(json.loads(handles.read_text())) if handles.exists() else set()
    assert not {c.pid for c in clients} & registered

    assert run(ANSWER, pgdata).output.strip() == "answers True"
    assert run(["pgserver", "stop"], pgdata).output.strip() == "embedded PostgreSQL: stopped"
    assert run(ANSWER, pgdata).output.strip() == "answers True"


def test_listens_on_a_unix_socket_only(pgdata):
    shown = run(ANSWER.replace("SELECT pg_backend_pid() > 0", "SHOW listen_addresses")
                .replace("print('answers', ", "print(repr(")
                .replace("fetchone()[0])", "fetchone()[0]))"), pgdata)
    assert shown.output.strip() == "''", shown.output
    postmaster = psutil.Process(postmaster_pid(pgdata))
    assert postmaster.net_connections(kind="inet") == []
    unix = [c for c in postmaster.net_connections(kind="unix") if c.laddr]
    assert any(c.laddr.endswith(".s.PGSQL.5432") for c in unix), unix


def test_pgdata_with_a_space_is_one_line_error(tmp_path):
    result = run(["pgserver", "start"], tmp_path / "My Projects" / "pg")
    assert result.returncode == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: LABAPP_PGDATA must not contain spaces")
    assert not (tmp_path / "My Projects").exists()  # refused before making anything


def test_collecting_the_tests_starts_no_server(open_tmp):
    """`pytest --collect-only` reads every test module; none may start a server."""
    env = scenarios.environment("DATABASE_URL", scenarios.PYTEST_RUN, LABAPP_PGDATA=open_tmp / "pg")
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:xdist"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert " tests collected" in proc.stdout
    assert not (open_tmp / "pg" / "postmaster.pid").exists()
    assert our_postgres(open_tmp / "pg") == []


def test_a_database_url_run_stops_the_embedded_server_its_tests_started(open_tmp):
    """With DATABASE_URL set, a test of the embedded default (test_factory) still starts the
    embedded server: the run stops it at its end, as a run without DATABASE_URL does."""
    env = scenarios.environment(scenarios.PYTEST_RUN, DATABASE_URL="postgresql://postgres@127.0.0.1:1/unused",
                                LABAPP_PGDATA=open_tmp / "pgdata")  # (test_factory checks the name)
    test = "tests/test_factory.py::test_without_database_url_the_embedded_server_is_used"
    try:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", test],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        assert "1 passed" in proc.stdout
        assert (open_tmp / "pgdata" / "PG_VERSION").exists()  # the test did start it
        assert our_postgres(open_tmp / "pgdata") == []
    finally:
        run("from labapp.server import pgserver; pgserver.stop()", open_tmp / "pgdata")


# -- a server that cannot start: one true line, and the kit stays usable ------------------

AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def test_a_data_folder_the_server_cannot_use_is_one_line_and_the_commands_stay(open_tmp):
    pgdata = open_tmp / "pg"
    cause = unusable_data_folder(pgdata)

    shown = run(["--help"], pgdata)
    assert shown.returncode == 0, shown.output
    for command in ("createdb", "db", "loaddata", "pgserver", "replay-production", "room"):
        assert f"\n  {command} " in shown.output, shown.output
    status = run(["pgserver", "status"], pgdata)
    assert status.output.strip() == f"embedded PostgreSQL: stopped (data: {pgdata})", status.output
    assert run(["pgserver", "stop"], pgdata).output.strip() == "embedded PostgreSQL: was not running"

    started = run(["pgserver", "start"], pgdata)
    lines = started.output.strip().splitlines()
    assert started.returncode == 1 and len(lines) == 1, started.output
    assert lines[0].startswith(f"Error: the embedded PostgreSQL at {pgdata} could not start: ")
    assert cause in lines[0] and "LABAPP_PGDATA" in lines[0], lines[0]
    assert "Traceback" not in started.output and "Failed postgres command" not in started.output


def test_labapp_debug_shows_the_wheels_log(open_tmp):
    pgdata = open_tmp / "pg"
    unusable_data_folder(pgdata)
    proc = run(["pgserver", "start"], pgdata, LABAPP_DEBUG="1")
    assert proc.returncode == 1, proc.output
    assert "Traceback" in proc.output and "Permission denied" in proc.output, proc.output


@pytest.mark.skipif(not AS_ROOT, reason="as another user, the server runs as that user: nothing to open")
def test_a_data_folder_inside_a_private_folder_is_refused_and_nothing_is_opened(open_tmp):
    private = open_tmp / "home"
    private.mkdir(mode=0o700)
    shown = run(["pgserver", "start"], private / "pg")
    lines = shown.output.strip().splitlines()
    assert shown.returncode == 1 and len(lines) == 1, shown.output
    assert f"is inside {private}, which only its owner may enter" in lines[0], lines[0]
    assert private.stat().st_mode & 0o777 == 0o700
    assert not (private / "pg").exists()


def test_a_sandbox_whose_owner_was_killed_is_stopped_and_removed_by_the_next_one():
    """A test run killed with -9 skips its sandbox's cleanup: the sandbox's embedded server
    would run on. The next sandbox made on this machine stops it and removes its folder."""
    killed = subprocess.run([sys.executable, "-c", (
        "import os, signal, subprocess, sys\n"
        "from tools import scenarios\n"
        "with scenarios.sandbox('lsw-') as (top, env):\n"
        "    subprocess.run([sys.executable, '-c', 'from labapp.server import pgserver; pgserver.ensure_running()'],\n"
        "                   cwd=top, env=env, check=True)\n"
        "    print(top, (top / 'pg' / 'postmaster.pid').read_text().split()[0], flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n")],
        cwd=ROOT, env=scenarios.environment(PYTHONPATH=ROOT), capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    top, pid = killed.stdout.split()
    assert psutil.pid_exists(int(pid)), "the killed owner's server should still run here"
    with scenarios.sandbox("lsw-") as (mine, _):
        scenarios.sweep_abandoned_sandboxes()
        assert mine.exists(), "a sandbox whose owner runs is in use: never swept"
    assert not os.path.exists(top)
    assert not psutil.pid_exists(int(pid)) or psutil.Process(int(pid)).status() == psutil.STATUS_ZOMBIE
