"""The hub for a room on one VM, as the guide stands it up (tools/hub/jupyterhub_config.py,
hub.env's settings, a roster), driven for real over HTTPS with a self-signed
certificate made here by openssl. Slow (CI=true runs it):

* TLS: the hub answers HTTPS with the room's certificate; plain HTTP gets nothing;
* logins through the real login form: a learner's own password gets in; someone
  else's password, a wrong one and a name not on the roster (a typo, refused with
  the one line that says so) do not;
* the admin (the roster's `admin` line) reaches the admin panel; a learner does not;
* a learner's terminal is not root: as root, the hub runs their server as their own
  account `jupyter-<name>` (if this machine cannot make accounts, the test says so);
* the idle culler (jupyterhub-idle-culler, a hub service) stops an idle server,
  and the learner's embedded PostgreSQL stops with it.
"""
import asyncio
import html
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from labapp.room import roster
from tools.hub import auth, driver

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def proxy():
    driver.ensure_proxy()


def self_signed(folder):
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def login(hub, name, password):
    """The login form, as a browser posts it: (status, page text, session)."""
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would win over the room's certificate
    session.verify = str(hub.tls[0])
    session.get(f"{hub.url}/hub/login", timeout=30)
    xsrf = session.cookies.get("_xsrf")
    response = session.post(f"{hub.url}/hub/login?next=/hub/home", timeout=60, allow_redirects=False,
                            data={"username": name, "password": password, "_xsrf": xsrf})
    return response.status_code, response.text, session


def login_error(page):
    found = re.search(r'<p class="login_error">(.*?)</p>', page, re.S)
    return found and html.unescape(" ".join(found.group(1).split()))


async def terminal_says(learner, command):
    """Open a terminal in the learner's JupyterLab, as its Terminal tab does, and
    return what `command` printed."""
    made = await learner._call("POST", "/api/terminals")
    ws = await websocket_connect(HTTPRequest(
        f"wss{learner.base[5:]}/terminals/websocket/{made['name']}",
        headers={"Authorization": f"token {learner.token}"}, **learner.hub.ssl))
    # the marker as typed ('ab''cd') is not the marker printed (abcd): the terminal's echo of
    # the line, once or twice (typed ahead of the shell: the tty's echo, then readline's),
    # holds only the typed form
    half = uuid.uuid4().hex[:8]
    marker, typed = half + half[::-1], f"'{half}''{half[::-1]}'"
    ws.write_message(json.dumps(["stdin", f"echo {typed}; {command}; echo {typed}\r"]))
    seen = ""
    try:
        deadline = time.monotonic() + 60
        while seen.count(marker) < 2 and time.monotonic() < deadline:
            message = await asyncio.wait_for(ws.read_message(), 60)
            if message is None:
                break
            kind, *rest = json.loads(message)
            if kind == "stdout":
                seen += rest[0]
    finally:
        ws.close()
        await learner._call("DELETE", f"/api/terminals/{made['name']}")
    parts = seen.replace("\r", "").split(marker)
    return parts[1].strip() if len(parts) >= 3 else seen


def test_a_hub_for_a_room_over_https_with_a_roster_an_admin_non_root_learners_and_a_culler():
    tag = f"r{os.getpid() % 100000}"
    alice, bob = f"{tag}a", f"{tag}b"
    state = Path(tempfile.mkdtemp(prefix="lhubr-", dir="/tmp"))
    state.chmod(0o755)
    room = roster.new([alice, bob], admin=f"{tag}admin")
    roster_file = roster.write(room, state / "roster.txt")
    admin = f"{tag}admin"
    tls = self_signed(state)
    hub = driver.Hub(state, roster_file=roster_file, tls=tls, cull_idle=90)
    skipped = []
    try:
        with hub:
            # TLS: the room's certificate answers; plain HTTP on the same port does not
            assert requests.get(f"{hub.url}/hub/api/", verify=str(tls[0]), timeout=30).status_code == 200
            with pytest.raises(requests.exceptions.SSLError):
                requests.get(f"{hub.url}/hub/api/", timeout=30)  # not trusted without the room's cert
            with pytest.raises(requests.exceptions.ConnectionError):
                requests.get(f"http://127.0.0.1:{hub.port}/hub/api/", timeout=30)

            # logins: only each person's own password, only names on the roster
            status, page, _ = login(hub, alice, room.passwords[bob])
            assert status == 403 and login_error(page) == "Invalid username or password", page[-600:]
            status, page, _ = login(hub, alice, "not-her-password")
            assert status == 403 and login_error(page) == "Invalid username or password"
            status, page, _ = login(hub, alice[:-1] + "x", room.passwords[alice])  # a typo
            assert status == 403
            assert login_error(page) == (f"'{alice[:-1]}x' is not on this room's roster: check the "
                                         "spelling on your slip, or ask the instructor"), page[-600:]
            status, page, learner_session = login(hub, alice, room.passwords[alice])
            assert status == 302, page[-600:]
            assert learner_session.get(f"{hub.url}/hub/home", timeout=30).status_code == 200

            # the admin panel: the instructor's, not a learner's
            status, page, admin_session = login(hub, admin, room.passwords[admin])
            assert status == 302, page[-600:]
            assert admin_session.get(f"{hub.url}/hub/admin", timeout=30).status_code == 200
            assert learner_session.get(f"{hub.url}/hub/admin", timeout=30).status_code == 403

            async def learner_terminal():
                learner = await hub.learner(alice)
                said = await terminal_says(learner, "id -u; id -un; echo $JUPYTERHUB_USER")
                return learner, said

            learner, said = asyncio.run(learner_terminal())
            uid, account, user = said.split()
            assert uid != "0" and user == alice, said
            if os.geteuid() == 0:
                assert account == auth.account(alice), said  # their own system account
                assert oct(learner.home.stat().st_mode & 0o777) == "0o700"  # others cannot read it
            else:
                skipped.append("the hub does not run as root: learners run as its own account")
            pgdata = driver.pgdata_of(learner.home, alice)

            async def start_embedded():  # a lab's first cell starts the learner's embedded server
                return await learner.run("00-Welcome.ipynb")

            cells = asyncio.run(start_embedded())
            errors = [o for cell in cells for o in cell.outputs if o["output_type"] == "error"]
            assert cells and not errors, errors
            assert driver.postgres_processes(pgdata), "the learner's embedded PostgreSQL did not start"

            # the culler: alice's server, idle, is stopped; her embedded PostgreSQL with it
            async def culled(deadline):
                while time.monotonic() < deadline:
                    user = await hub.api("GET", f"/users/{alice}")
                    if not user.get("servers"):
                        return True
                    await asyncio.sleep(3)
                return False

            assert asyncio.run(culled(time.monotonic() + 240)), hub.log_tail()
            assert "idle-culler" in hub.log_tail(400)
            for _ in range(30):
                if not driver.postgres_processes(pgdata):
                    break
                time.sleep(1)
            assert not driver.postgres_processes(pgdata), "the culled server's PostgreSQL still runs"
        assert hub.leftovers() == [], "processes outlived the hub"
        hub.remove_accounts()
        if os.geteuid() == 0:
            with pytest.raises(KeyError):  # the driver's learners' accounts went with the room
                __import__("pwd").getpwnam(auth.account(alice))
    finally:
        if hub.process and hub.process.poll() is None:
            hub.stop()
        hub.remove_accounts()
        shutil.rmtree(state, ignore_errors=True)
    if skipped:
        pytest.skip("; ".join(skipped))
