"""The app served as in production, in the background of a lab: waitress, a
production WSGI server in pure Python (it runs on Windows too, where gunicorn
does not), on 127.0.0.1 and a free port.

    v1 = appserver.deploy(lab07, "v1")    # the workspace's app.py + models.py, frozen
                                          # as releases/v1/ and served: v1.url
    v1.post("/api/deals", {...})          # (status, answer); v1.posts keeps every call
    v1.stop()                             # (release() and start() do the two halves)
    appserver.stop_all(lab07.workspace)   # every server started from that workspace

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

from labapp import settings
from labapp.server import processes
from labapp.errors import LabError

HOST = "127.0.0.1"
THREADS = 8        # waitress's worker threads: requests served at once
START_TIMEOUT = 30  # seconds for a server to answer /api/health
RELEASE_FILES = ("app.py", "models.py")
_started = []      # the servers this process started, still running


def release(lab, name):
    """Freeze the workspace's app.py and models.py as release `name`
    (releases/<name>/, replaced if it exists); its path."""
    target = Path(lab.workspace) / "releases" / name
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for file in RELEASE_FILES:
        shutil.copyfile(Path(lab.workspace) / file, target / file)
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
    settings.refuse_in_self_checks("app server")
    workspace = Path(lab.workspace)
    code = workspace / "releases" / name
    if not (code / "app.py").exists():
        raise LabError(f"no release {name!r}: make it first with appserver.release(lab, {name!r})")
    stop_all(workspace, only=name)
    run = processes.folder(workspace)
    run.mkdir(exist_ok=True)
    log = run / f"{name}.log"
    port_file = log.with_suffix(".port")
    port_file.unlink(missing_ok=True)
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "labapp.live.appserver", str(port_file), str(threads)],
            cwd=code, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "PGAPPNAME": name})  # its sessions show as "v1" in pg_stat_activity
    processes.record(workspace, name, process.pid)
    server = Server(name, 0, process, log)
    _started.append(server)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if not server.running():
            server.stop()
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["(empty log)"]
            raise LabError(f"app server {name!r} exited at start: {tail[0]}")
        if not server.port and port_file.exists() and port_file.read_text().strip():
            server.port = int(port_file.read_text())
        if server.port and _healthy(server.url):
            return server
        time.sleep(0.05)
    server.stop()
    raise LabError(f"app server {name!r} did not answer in {START_TIMEOUT} s: see {log}")


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


# -- the server process: python -m labapp.live.appserver PORTFILE THREADS (cwd: the release) --

def _exit_when_parent_goes():
    """End of file on stdin: the process that started us is gone (or stopped us)."""
    while os.read(0, 4096):  # the raw fd: no lock that would hang the interpreter's exit
        pass
    os._exit(0)


def serve(port_file, threads):
    import waitress  # only in the server process, not in a kernel that starts one

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    threading.Thread(target=_exit_when_parent_goes, daemon=True).start()
    sys.path.insert(0, os.getcwd())
    from app import app  # the release's app.py

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))  # a free port, chosen by the system
    Path(port_file).write_text(str(sock.getsockname()[1]))
    waitress.serve(app, sockets=[sock], threads=threads, ident="labapp")


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
