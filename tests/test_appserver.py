"""The app served as in production (labapp.live.appserver): waitress on 127.0.0.1,
two releases side by side, and no server that outlives what started it: a
stop, a lab's reset, or a kernel killed with SIGKILL."""
import json
import os
import signal
import subprocess
import sys
import time
import types
import urllib.request

import psutil
import pytest

from helpers import ROOT, SAMPLE, postgres_only
from labapp import db
from labapp.crm import data
from labapp.live import appserver
from labapp.runtime import labs, workspace
from labapp.errors import LabError

pytestmark = postgres_only


@pytest.fixture
def lab(tmp_path, schema):
    """A lab-like object with a fresh workspace, on the fresh database (schema)."""
    spec = labs.LabSpec("labtest", "99-Test.ipynb", "a test lab")
    return types.SimpleNamespace(workspace=workspace.build(tmp_path / "ws", spec))


def get(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, json.load(response)


def gone(pid, within=20):
    """Has process `pid` ended (or become a zombie) within `within` s?"""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def test_two_releases_serve_side_by_side_each_with_its_own_code(lab, schema):
    with schema.app_context(), db.engine.begin() as conn:
        data.load(conn, SAMPLE)
    appserver.release(lab, "v1")
    (lab.workspace / "models.py").write_text(
        (lab.workspace / "models.py").read_text().replace("    GBP = 3\n", "    GBP = 3\n    BTC = 4\n"))
    appserver.release(lab, "v2")
    v1, v2 = appserver.start(lab, "v1"), appserver.start(lab, "v2")
    try:
        assert v1.port != v2.port and v1.url.startswith("http://127.0.0.1:")
        assert get(f"{v1.url}/api/health") == (200, {"status": "ok"})
        assert len(get(f"{v2.url}/api/deals")[1]) == 10
        # v1's code does not know BTC (a 400 from the app); v2's does, the database not (a 500)
        body = json.dumps({"contact_id": 1, "title": "x", "amount": "1", "currency": "BTC"}).encode()
        statuses = []
        for server in (v1, v2):
            request = urllib.request.Request(f"{server.url}/api/deals", data=body,
                                             headers={"Content-Type": "application/json"})
            try:
                urllib.request.urlopen(request, timeout=10)
            except urllib.error.HTTPError as exc:
                statuses.append(exc.code)
        assert statuses == [400, 500]
        assert "invalid input value for enum dealcurrency" in v2.last_error()
        assert (lab.workspace / "servers" / "v1.log").exists()
    finally:
        assert sorted(appserver.stop_all(lab.workspace)) == ["v1", "v2"]
    assert not v1.running() and not v2.running()
    assert list((lab.workspace / "servers").glob("*.pid")) == []


def test_a_server_keeps_each_post_with_its_status(lab, schema):
    """Server.post() keeps every call, so that a self-check can tell which release
    a learner sent a deal to, and whether it was taken (201)."""
    with schema.app_context(), db.engine.begin() as conn:
        data.load(conn, SAMPLE)
    appserver.release(lab, "v1")
    v1 = appserver.start(lab, "v1")
    good = {"contact_id": 1, "title": "From v1", "amount": "1", "currency": "USD"}
    bad = {**good, "currency": "BTC"}  # v1's code does not know BTC: a 400
    try:
        assert v1.post("/api/deals", good)[0] == 201
        assert v1.post("/api/deals", bad)[0] == 400
        good["title"] = "changed after the call"
        assert v1.posts == [("/api/deals", {**good, "title": "From v1"}, 201), ("/api/deals", bad, 400)]
    finally:
        appserver.stop_all(lab.workspace)
    with pytest.raises(OSError):  # stopped: the connection is refused
        v1.post("/api/deals", bad)
    assert v1.posts[-1] == ("/api/deals", bad, 0) and len(v1.posts) == 3


def test_a_release_that_does_not_exist_is_one_line(lab):
    with pytest.raises(LabError, match="no release 'v9'"):
        appserver.start(lab, "v9")


def test_an_app_that_fails_to_load_says_why_in_one_line(lab):
    appserver.release(lab, "broken")
    (lab.workspace / "releases" / "broken" / "app.py").write_text("raise SystemExit('no app here')\n")
    with pytest.raises(LabError, match="exited at start: no app here"):
        appserver.start(lab, "broken")


KERNEL = """
import sys, time, types
from labapp.live import appserver
lab = types.SimpleNamespace(workspace=sys.argv[1])
server = appserver.start(lab, "v1")
print(server.process.pid, flush=True)
time.sleep(600)
"""


def start_kernel(lab):
    """A process standing for a lab's kernel: it starts a server and waits."""
    appserver.release(lab, "v1")
    kernel = subprocess.Popen([sys.executable, "-c", KERNEL, str(lab.workspace)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    return kernel, int(kernel.stdout.readline())


def test_a_server_dies_with_the_kernel_that_started_it_even_on_sigkill(lab):
    kernel, server = start_kernel(lab)
    try:
        assert psutil.Process(server).is_running()
        os.kill(kernel.pid, signal.SIGKILL)
        kernel.wait(10)
        assert gone(server), "the server outlived its killed kernel"
    finally:
        kernel.kill()
        kernel.wait()
        kernel.stdout.close()
        appserver.stop_all(lab.workspace)


def test_a_reset_stops_a_server_an_earlier_kernel_left_running(lab, monkeypatch):
    kernel, server = start_kernel(lab)  # the kernel is still alive: its server too
    killed = []
    monkeypatch.setattr(psutil.Process, "kill", lambda self: killed.append(self.pid))
    try:
        assert appserver.stop_all(lab.workspace) == ["v1"]  # what Lab.reset() calls first
        # it ended on SIGTERM, a zombie until its kernel reaps it: the reset saw that and
        # did not wait out its 10 s for a kill
        assert gone(server) and not killed
        assert server not in appserver.running_servers()
    finally:
        kernel.kill()
        kernel.wait()
        kernel.stdout.close()


def test_make_reset_stops_the_server_a_kernel_of_that_lab_left(tmp_path, monkeypatch, db_name):
    from labapp.runtime import lab as runtime

    spec = labs.LabSpec(db_name, "99-Test.ipynb", "a test lab")
    monkeypatch.setattr(labs, "LABS", (*labs.LABS, spec))
    monkeypatch.setattr(runtime, "CLONE_NOTEBOOKS", tmp_path)
    folder = runtime.Lab(spec, notebooks=tmp_path).reset().workspace
    kernel, server = start_kernel(types.SimpleNamespace(workspace=folder))
    try:
        assert runtime.main([db_name]) == 0  # what `make reset LAB=...` runs
        assert gone(server), "make reset left the lab's app server running"
    finally:
        kernel.kill()
        kernel.wait()
        kernel.stdout.close()
