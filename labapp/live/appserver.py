"""The app served as in production, in the background of a lab: waitress, a
production WSGI server in pure Python (it runs on Windows too, where gunicorn
does not), on 127.0.0.1 and a free port.

    v1 = appserver.deploy(lab07, "v1")    # the workspace's app.py + models.py, frozen
                                          # as releases/v1/ and served: v1.url
    v1.post("/api/deals", {...})          # (status, answer); v1.posts keeps every call
    v1.stop()                             # (release() and start() do the two halves)
    appserver.stop_all(lab07.workspace)   # every server started from that workspace

    copies = appserver.boot(lab09, "v2", 3, upgrade=True)   # lab 09's replicas: three
                                          # servers of release v2 started at once, each
                                          # running `flask db upgrade` before it serves
    copies = appserver.boot(lab09, "v2", 3, upgrade=True, during_report="deals")
                                          # ... while a report reads deals: every copy's
                                          # migration waits for it, so the race is certain

Each release is a folder, `releases/<name>/`, with the code it was deployed
with, so two versions can serve side by side (a rolling deploy). A server's
log and pidfile are in the workspace's `servers/` folder (labapp.server.processes):
the lab's setup cell and `make reset` stop whatever an earlier run left there. And a server never
outlives the process that started it: its stdin is a pipe from that process,
and it exits when the pipe closes (end of file), which happens however that
process ends, `kill -9` included.
"""
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import sqlalchemy as sa

from labapp import settings
from labapp.server import database, processes
from labapp.errors import LabError

HOST = "127.0.0.1"
THREADS = 8        # waitress's worker threads: requests served at once
START_TIMEOUT = 30  # seconds for a server to answer /api/health
RELEASE_FILES = ("app.py", "models.py")
_started = []      # the servers this process started, still running


def release(lab, name, migrations=False):
    """Freeze the workspace's app.py and models.py as release `name`
    (releases/<name>/, replaced if it exists); its path. With `migrations`, its
    migrations/ folder too, as a container image carries it (for a copy that
    runs `flask db upgrade` at boot)."""
    target = Path(lab.workspace) / "releases" / name
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for file in RELEASE_FILES:
        shutil.copyfile(Path(lab.workspace) / file, target / file)
    if migrations:
        shutil.copytree(Path(lab.workspace) / "migrations", target / "migrations",
                        ignore=shutil.ignore_patterns("__pycache__"))
    return target


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen
    log: Path
    # each post() call, oldest first, as (path, body, status), status 0 when the
    # server did not answer: what a self-check reads to see where a learner sent a
    # request (a Load's requests go around post() and keep their own record)
    posts: list = field(default_factory=list, compare=False, repr=False)
    release: str = ""  # the release it serves (its name, unless it is one of several copies)
    serving_at: float = 0.0  # time.monotonic() when it first answered its health check

    def __post_init__(self):
        self.release = self.release or self.name

    @property
    def url(self):
        return f"http://{HOST}:{self.port}"

    def running(self):
        return self.process.poll() is None

    def stop(self, timeout=10):
        """Close its stdin (it exits by itself), or end it if it does not."""
        if self.process.stdin and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        processes.forget(self.log.parent.parent, self.name)
        if self in _started:
            _started.remove(self)

    def get(self, path):
        """GET `path` from this server: its JSON answer (what a page's script would see)."""
        with urllib.request.urlopen(f"{self.url}{path}", timeout=10) as response:
            return json.load(response)

    def post(self, path, body):
        """POST `body` as JSON to `path`: (status, the JSON answer). The call is
        kept in `posts`, answered or not."""
        sent = json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=sent,
                                         headers={"Content-Type": "application/json"})
        status = 0
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status = response.status
                return status, json.load(response)
        except urllib.error.HTTPError as exc:
            with exc:
                status = exc.code
                return status, json.loads(exc.read() or b"null")
        finally:
            self.posts.append((path, json.loads(sent), status))  # as sent, not as changed since

    def exit_line(self):
        """The last line of its log that names an error, else its last line: why it
        exited."""
        lines = self.log.read_text(errors="replace").strip().splitlines() if self.log.exists() else []
        return self.last_error() or (lines[-1].strip() if lines else "(empty log)")

    def last_error(self):
        """The last line of its log that names an error (what a 500 was), or None."""
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        found = [line for line in lines if "Error:" in line or line.startswith("Error")]
        return found[-1].strip() if found else None

    def __repr__(self):
        return f"<Server {self.name} on {HOST} ({'running' if self.running() else 'stopped'})>"


def deploy(lab, name):
    """Release the workspace's code as `name` and serve it: a deploy."""
    release(lab, name)
    server = start(lab, name)
    print(f"{name} serves on {HOST} (waitress, {THREADS} threads); "
          f"its log: {processes.FOLDER}/{name}.log")
    return server


def start(lab, name, threads=THREADS):
    """Serve release `name` of the lab (see release()) in the background; returns
    once it answers /api/health."""
    server = _launch(lab, name, name, threads)
    return _ready(server)


def _launch(lab, name, code_name, threads=THREADS, upgrade=False):
    """Start server `name` on release `code_name`; `upgrade`: it runs `flask db
    upgrade` in the release's folder first, and serves only if that succeeded."""
    settings.refuse_in_self_checks("app server")
    workspace = Path(lab.workspace)
    code = workspace / "releases" / code_name
    if not (code / "app.py").exists():
        raise LabError(f"no release {code_name!r}: make it first with "
                       f"appserver.release(lab, {code_name!r})")
    if upgrade and not (code / "migrations").is_dir():
        raise LabError(f"release {code_name!r} has no migrations/ to run at boot: make it with "
                       f"appserver.release(lab, {code_name!r}, migrations=True)")
    stop_all(workspace, only=name)
    run = processes.folder(workspace)
    run.mkdir(exist_ok=True)
    log = run / f"{name}.log"
    port_file = log.with_suffix(".port")
    port_file.unlink(missing_ok=True)
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "labapp.live.appserver", str(port_file), str(threads),
             *(["--upgrade"] if upgrade else [])],
            cwd=code, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "PGAPPNAME": name})  # its sessions show as "v1" in pg_stat_activity
    processes.record(workspace, name, process.pid)
    server = Server(name, 0, process, log, release=code_name)
    _started.append(server)
    return server


def _ready(server, timeout=START_TIMEOUT):
    """Wait until `server` answers /api/health; LabError if it exits or never answers."""
    port_file = server.log.with_suffix(".port")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.running():
            server.stop()
            raise LabError(f"app server {server.name!r} exited at start: {server.exit_line()}")
        if not server.port and port_file.exists() and port_file.read_text().strip():
            server.port = int(port_file.read_text())
        if server.port and _healthy(server.url):
            server.serving_at = time.monotonic()
            return server
        time.sleep(0.05)
    server.stop()
    raise LabError(f"app server {server.name!r} did not answer in {timeout} s: see {server.log}")


ADVISORY_WAITERS = """SELECT a.application_name, l.granted FROM pg_locks l
                      JOIN pg_stat_activity a USING (pid)
                      WHERE l.locktype = 'advisory' AND l.database = (
                          SELECT oid FROM pg_database WHERE datname = current_database())"""


class _AdvisoryWatch:
    """Samples pg_locks while copies boot: which sessions (by application_name,
    the copy's name) ever waited for an advisory lock, and which held one."""

    def __init__(self, url):
        self.waited, self.held, self._stop = set(), set(), threading.Event()
        self._engine = database.quick_engine(url)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        with self._engine.connect() as conn:
            while not self._stop.is_set():
                for name, granted in conn.execute(sa.text(ADVISORY_WAITERS)):
                    (self.held if granted else self.waited).add(name)
                conn.rollback()  # a fresh snapshot of pg_locks each time
                self._stop.wait(0.01)

    def stop(self):
        self._stop.set()
        self._thread.join(10)
        self._engine.dispose()


@dataclass
class Boot:
    """How one copy's boot went: it serves (`server`), or it exited (`error`: the
    last line of its log, which names the error). `ran`: the revisions its boot's
    `flask db upgrade` started to run ("0001 -> 0002"); `waited`: it waited for
    another session's advisory lock (seen in pg_locks)."""
    name: str
    server: "Server | None"
    error: "str | None"
    started: float   # time.monotonic() when it was started
    ended: float     # ... when it answered its health check, or exited
    ran: list = field(default_factory=list)
    waited: bool = False
    queued: "int | None" = None  # during_report: copies waiting for a lock when it ended

    @property
    def ok(self):
        return self.server is not None


LOCK_WAITERS = """SELECT count(DISTINCT application_name) FROM pg_stat_activity
                  WHERE datname = current_database() AND application_name = ANY(:names)
                    AND wait_event_type = 'Lock'"""


class _Report:
    """A report that reads `table` in one transaction and keeps its ACCESS SHARE
    lock until every copy's session waits for a lock (or a copy exits, or 60 s
    pass): no copy's migration can commit before every copy has read
    alembic_version. Its session is "report" in pg_stat_activity."""

    def __init__(self, url, table):
        self._engine = database.quick_engine(url)
        self._conn = self._engine.connect()
        self._conn.exec_driver_sql("SET application_name = 'report'")
        self._conn.execute(sa.text(f"SELECT count(*) FROM {table}"))  # ACCESS SHARE, kept

    def end_when_all_wait(self, servers, timeout=60):
        """Wait until every server's session waits for a lock; then end the report.
        The number of copies that waited."""
        names = [s.name for s in servers]
        waiting, deadline = 0, time.monotonic() + timeout
        try:
            with self._engine.connect() as watch:
                while time.monotonic() < deadline and all(s.running() for s in servers):
                    waiting = watch.execute(sa.text(LOCK_WAITERS), {"names": names}).scalar()
                    watch.rollback()  # a fresh snapshot of pg_stat_activity each time
                    if waiting == len(names):
                        break
                    time.sleep(0.02)
        finally:
            self._conn.close()  # rolled back: its lock goes, the first waiter proceeds
            self._engine.dispose()
        return waiting


def boot(lab, code_name, copies=3, upgrade=True, threads=4, timeout=60, during_report=None):
    """Start `copies` servers of release `code_name` at once, named
    <code_name>-1, -2, ...: a deploy that scales a release out. With `upgrade`,
    each copy runs `flask db upgrade` at boot before it serves (the release
    needs its migrations/: release(..., migrations=True)). `during_report`: a
    table that a report reads while the copies start; it ends once every copy
    waits for a lock (the first one's ALTER TABLE waits for the report), so every
    copy has read alembic_version before any can commit: the race is certain,
    not a matter of how fast this machine starts processes. Returns a Boot per
    copy, in order, once each serves or has exited; a copy that exited is
    stopped and forgotten, the others serve."""
    names = [f"{code_name}-{n}" for n in range(1, copies + 1)]
    report = _Report(lab.url, during_report) if during_report else None
    watch = _AdvisoryWatch(lab.url)
    queued = None
    try:
        launched = [(_launch(lab, name, code_name, threads, upgrade), time.monotonic())
                    for name in names]
        if report:
            queued = report.end_when_all_wait([server for server, _ in launched])
            report = None
        results = []
        for server, started in launched:
            try:
                _ready(server, timeout)
                results.append(Boot(server.name, server, None, started, server.serving_at))
            except LabError:
                results.append(Boot(server.name, None, server.exit_line(), started,
                                    time.monotonic()))
    finally:
        if report:  # a launch failed: end the report all the same
            report.end_when_all_wait([], timeout=0)
        watch.stop()
    for result, (server, _) in zip(results, launched, strict=True):
        result.queued = queued
        log = server.log.read_text(errors="replace") if server.log.exists() else ""
        result.ran = [line.split("Running upgrade", 1)[1].split(",")[0].strip()
                      for line in log.splitlines() if "Running upgrade" in line]
        result.waited = result.name in watch.waited
    return results


def stop_copies(lab, code_name):
    """Stop every copy of release `code_name` that boot() started (<code_name>-1, ...)."""
    run = processes.folder(lab.workspace)
    names = {s.name for s in _started if s.log.parent == run}
    names |= {p.stem for p in run.glob("*.pid")} if run.exists() else set()
    for name in sorted(n for n in names if n.rsplit("-", 1)[0] == code_name):
        stop_all(lab.workspace, only=name)


def summary(boots):
    """What a boot of copies did, in lines that do not depend on which copy won."""
    n, release = len(boots), boots[0].name.rsplit("-", 1)[0]
    ran = sum(bool(b.ran) for b in boots)
    waited = sum(b.waited for b in boots)
    failed = [b for b in boots if not b.ok]
    print(f"copies of {release} started at once: {n}")
    if boots[0].queued is not None:
        print(f"copies whose migration waited for a lock when the report ended: "
              f"{boots[0].queued} of {n}")
    print(f"copies whose `flask db upgrade` ran a revision: {ran} of {n}")
    print(f"copies that waited for another's advisory lock (pg_locks): {waited} of {n}")
    print(f"copies that failed to boot: {len(failed)} of {n}")
    for error in sorted({b.error for b in failed}):
        print(f"  {error}")
    print(f"copies serving {release}: {n - len(failed)} of {n}")


class Job:
    """A command run in the background from the lab's workspace (a deploy's
    `flask db upgrade` that may wait on a lock), its output in servers/<name>.log.
    Like a server, it ends when the process that started it ends.

        job = appserver.Job(lab09, "deploy", "flask db upgrade")
        job.waits_for_lock()   # True once its session waits for a lock (pg_stat_activity)
        job.running()      # still waiting?
        job.wait()         # its output, printed; its exit status
    """

    def __init__(self, lab, name, command):
        settings.refuse_in_self_checks("background job")
        workspace = Path(lab.workspace)
        processes.end(workspace, only=name)
        run = processes.folder(workspace)
        run.mkdir(exist_ok=True)
        self.name, self.workspace, self.log = name, workspace, run / f"{name}.log"
        self.url = lab.url
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "labapp.live.appserver", "--job", *command.split()],
                cwd=workspace, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT,
                env={**os.environ, "PGAPPNAME": name})
        processes.record(workspace, name, self.process.pid)

    def running(self):
        return self.process.poll() is None

    def waits_for_lock(self, timeout=30):
        """Wait until a session of this job waits for a lock (pg_stat_activity's
        wait_event_type 'Lock'): True; False if the job ended or `timeout` passed."""
        engine = database.quick_engine(self.url)
        query = sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"
                        " AND wait_event_type = 'Lock'")
        try:
            deadline = time.monotonic() + timeout
            with engine.connect() as conn:
                while time.monotonic() < deadline and self.running():
                    if conn.execute(query, {"name": self.name}).scalar():
                        return True
                    conn.rollback()
                    time.sleep(0.05)
            return False
        finally:
            engine.dispose()

    def wait(self, timeout=60):
        """Wait for it to end (stopped after `timeout` s); print its output; its exit status."""
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
        if self.process.stdin and not self.process.stdin.closed:
            self.process.stdin.close()
        print(self.log.read_text(errors="replace"), end="")
        processes.forget(self.workspace, self.name)
        return self.process.returncode

    def stop(self):
        processes.close(self.process)
        processes.forget(self.workspace, self.name)


def _job(command):
    """python -m labapp.live.appserver --job CMD...: run CMD (`flask` from this
    venv); end it if the process that started us goes (end of file on stdin)."""
    if command[0] == "flask":
        command = [sys.executable, "-m", "flask", *command[1:]]
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL)

    def watch():
        while os.read(0, 4096):
            pass
        child.kill()
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()
    sys.exit(child.wait())


def _healthy(url):
    try:
        with urllib.request.urlopen(f"{url}/api/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def stop_all(workspace, only=None):
    """Stop every server started from `workspace` (by this process, cleanly, or from
    its pidfile, by an earlier kernel: labapp.server.processes); the names stopped."""
    run = processes.folder(workspace)
    stopped = []
    for server in [s for s in _started if s.log.parent == run and only in (None, s.name)]:
        server.stop()
        stopped.append(server.name)
    return stopped + processes.end(workspace, only)


def running_servers():
    """The pids of every app server process on this machine (for tests)."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        if "labapp.live.appserver" in " ".join(process.info["cmdline"] or []):
            found.append(process.info["pid"])
    return found


# -- the server process: python -m labapp.live.appserver PORTFILE THREADS [--upgrade]
#    (cwd: the release) --

_upgrade = None  # the pid of the boot's `flask db upgrade` while it runs


def _exit_when_parent_goes():
    """End of file on stdin: the process that started us is gone (or stopped us)."""
    while os.read(0, 4096):  # the raw fd: no lock that would hang the interpreter's exit
        pass
    _end_upgrade()


def _end_upgrade(*_signal):
    """Exit, and end the boot's upgrade (it may wait on a lock forever) if it runs."""
    if _upgrade:
        try:
            os.killpg(_upgrade, signal.SIGKILL)  # its group: what it started too
        except ProcessLookupError:
            pass
    os._exit(0 if not _signal else 128 + _signal[0])


def start_upgrade():
    """What many deployments' boot script runs before the server: `flask db
    upgrade`, here, in the release's folder (its migrations/), its output in the
    server's log. The command is a `flask` process in all but its start-up: forked
    from this one once it has imported what both need (processes.flask_child),
    which spares a boot one interpreter's imports (~0.6 s of CPU). Its pid."""
    global _upgrade
    import flask.cli  # noqa: F401  (only in the server process, as waitress is)
    import flask_migrate.cli  # noqa: F401

    _upgrade = os.fork()  # before any thread starts: a fork copies only this one
    if _upgrade == 0:
        quiet = os.open(os.devnull, os.O_RDONLY)
        processes.flask_child(["flask", "db", "upgrade"], None, None, (quiet, 1, 2))  # never returns
    signal.signal(signal.SIGTERM, _end_upgrade)  # a stop while it runs ends it too
    return _upgrade


def finish_upgrade():
    """Wait for the boot's upgrade; if it failed, exit with its exit status."""
    global _upgrade
    code = os.waitstatus_to_exitcode(os.waitpid(_upgrade, 0)[1])
    _upgrade = None
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if code:
        sys.exit(code)


def serve(port_file, threads):
    import waitress  # only in the server process, not in a kernel that starts one

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.path.insert(0, os.getcwd())
    from app import app  # the release's app.py

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))  # a free port, chosen by the system
    Path(port_file).write_text(str(sock.getsockname()[1]))
    waitress.serve(app, sockets=[sock], threads=threads, ident="labapp")


if __name__ == "__main__":
    if sys.argv[1] == "--job":
        _job(sys.argv[2:])
    upgrading = "--upgrade" in sys.argv[3:]
    if upgrading:
        start_upgrade()
    threading.Thread(target=_exit_when_parent_goes, daemon=True).start()
    if upgrading:
        finish_upgrade()
    serve(sys.argv[1], int(sys.argv[2]))
