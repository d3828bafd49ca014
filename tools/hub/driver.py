"""Drive a real JupyterHub as a room of learners would: the hub test and
`make bench-room` (tools/bench/room.py) use it.

    with Hub(state_folder, room_url=None) as hub:      # tools/hub/jupyterhub_config.py
        learner = await hub.learner("alice")           # user, server, token
        cells = await learner.run("solutions/01-First-Migration.ipynb", think=0)

A learner's notebook runs as JupyterLab runs it: `POST /user/<u>/api/sessions`
with the notebook's path (its kernel starts in the notebook's folder), then one
`execute_request` per code cell on the kernel's websocket, with the learner's
token. Each cell's outputs come back in nbformat's shape, with its latency.
"""
import asyncio
import fcntl
import hashlib
import json
import os
import pwd
import random
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import psutil
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import websocket_connect

from labapp.room import roster
from tools import scenarios
from tools.hub import auth

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "jupyterhub_config.py"
PROXY = HERE / "node_modules" / ".bin" / "configurable-http-proxy"


@dataclass
class Cell:
    index: int
    source: str
    tags: set
    stored: list
    outputs: list = field(default_factory=list)
    seconds: float = 0.0


class Hub:
    """A JupyterHub started with the kit's config on loopback ports; stopped
    (SIGTERM, as a service manager stops it) when the block ends."""

    def __init__(self, state, room_url=None, room_file=None, roster_file=None, tls=None, cull_idle=0):
        """`roster_file`: the room's roster (default: one with only an instructor; the
        driver makes learners through the hub's API, which logs nobody in); `tls`:
        (cert, key) PEM files for HTTPS; `cull_idle`: the idle culler's timeout (0: off)."""
        self.state = Path(state)
        self.homes = self.state / "homes"
        self.port, self.api_port = scenarios.free_port_block(2), scenarios.free_port_block(1)
        self.tls = tls
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.token = secrets.token_hex(32)
        if roster_file is None:
            self.state.mkdir(parents=True, exist_ok=True)
            roster_file = roster.write(roster.new([]), self.state / "roster.txt")
        self.roster_file = Path(roster_file)
        # the room's settings are these, none of the run's around it
        self.env = scenarios.environment(
            scenarios.KIT_SETTINGS, scenarios.PYTEST_RUN, LABAPP_HUB_ROSTER=self.roster_file,
            LABAPP_HUB_PORT=self.port, LABAPP_HUB_API_PORT=self.api_port, LABAPP_HUB_STATE=self.state,
            LABAPP_HUB_HOMES=self.homes, LABAPP_HUB_DRIVER_TOKEN=self.token,
            LABAPP_HUB_CULL_IDLE=cull_idle,
            LABAPP_HUB_SSL_CERT=tls[0] if tls else None, LABAPP_HUB_SSL_KEY=tls[1] if tls else None,
            LABAPP_ROOM_DATABASE_URL=room_url or None, LABAPP_ROOM_FILE=room_file)
        self.process = None
        self.names = []

    @property
    def ssl(self):
        """Tornado's client settings: trust the room's own certificate."""
        return {"ca_certs": str(self.tls[0])} if self.tls else {}

    def __enter__(self):
        if not PROXY.exists():
            raise RuntimeError(f"no {PROXY}: run `make hub-proxy` (npm ci in tools/hub)")
        self.state.mkdir(parents=True, exist_ok=True)
        self.homes.mkdir(mode=0o755, exist_ok=True)
        self.log = open(self.state / "jupyterhub.log", "w")
        self.process = subprocess.Popen([str(learners_bin() / "jupyterhub"), "-f", str(CONFIG)], cwd=self.state,
                                        env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while not answers(f"{self.url}/hub/api/", self.tls[0] if self.tls else None):
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = self.log_tail()
                self.stop()
                raise RuntimeError(f"the hub did not start: {tail}")
            time.sleep(0.3)
        return self

    def __exit__(self, *exc):
        self.stop()

    def remove_accounts(self):
        """As root, the hub made a system account per learner (jupyter-<name>): the
        driver's learners are not people, so theirs go when the room ends (after
        `leftovers()`, which finds their processes by their homes)."""
        if os.geteuid() != 0:
            return
        for name in self.names:
            try:
                entry = pwd.getpwnam(auth.account(name))
            except KeyError:
                continue
            if entry.pw_gecos.startswith("labapp learner"):  # one the hub made, nobody else's
                subprocess.run(["userdel", "--remove", entry.pw_name], capture_output=True)

    def log_tail(self, lines=40):
        self.log.flush()
        return "\n".join((self.state / "jupyterhub.log").read_text().splitlines()[-lines:])

    def stop(self):
        """SIGTERM: the hub stops every server (their post-stop hooks run) and its proxy."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(90)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if not self.log.closed:
            self.log.close()

    def leftovers(self):
        """Processes of this room still alive: the proxy, learners' servers, their
        kernels and commands, their embedded PostgreSQL servers."""
        pgdatas = [str(pgdata_of(self.home(name), name)) for name in self.names]
        found = []
        for proc in psutil.process_iter(["name", "cmdline"]):
            try:
                if proc.pid == os.getpid() or proc.status() == psutil.STATUS_ZOMBIE:
                    continue
                cmd = " ".join(proc.info["cmdline"] or [])
                if proc.info["name"] == "postgres":  # the postmaster names its data folder
                    mine = any(f"-D {p}" in cmd or f"-D={p}" in cmd or p in cmd for p in pgdatas)
                else:
                    env = proc.environ()
                    mine = (env.get("LABAPP_HUB_STATE") == str(self.state)
                            or env.get("JUPYTERHUB_USER") in self.names)
            except psutil.Error:
                continue
            if mine:
                found.append(f"{proc.pid} {cmd[:160]}")
        return found

    def home(self, name):
        """The learner's home: their account's as root, else under the homes folder."""
        if os.geteuid() == 0:
            try:
                return Path(pwd.getpwnam(auth.account(name)).pw_dir)
            except KeyError:
                return Path("/nonexistent") / name
        return self.homes / name

    async def api(self, method, path, body=None, token=None):
        request = HTTPRequest(f"{self.url}/hub/api{path}", method=method, request_timeout=120,
                              headers={"Authorization": f"token {token or self.token}"},
                              body=None if method in ("GET", "DELETE") else json.dumps(body or {}),
                              **self.ssl)
        response = await AsyncHTTPClient().fetch(request, raise_error=False)
        if response.code >= 400 and not (method == "POST" and response.code == 409):
            raise RuntimeError(f"{method} {path}: {response.code} {response.body[:300]!r}")
        return json.loads(response.body) if response.body else None

    async def learner(self, name):
        """Create `name`, start their server, mint their token."""
        self.names.append(name)
        await self.api("POST", f"/users/{name}")
        try:
            await self.api("POST", f"/users/{name}/server")
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{self.log_tail()}") from None
        deadline = time.monotonic() + 120
        while True:
            user = await self.api("GET", f"/users/{name}")
            server = user.get("servers", {}).get("")
            if server and server.get("ready"):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name}'s server did not start: {self.log_tail()}")
            await asyncio.sleep(0.3)
        token = (await self.api("POST", f"/users/{name}/tokens", {"note": "driver", "expires_in": 7200}))["token"]
        return Learner(self, name, token)

    async def stop_server(self, name):
        await self.api("DELETE", f"/users/{name}/server")


def answers(url, cafile=None, timeout=2):
    """Does `url` answer 200 now (over HTTPS: with the room's certificate)?"""
    context = ssl.create_default_context(cafile=cafile) if cafile else None
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            return response.status == 200
    except OSError:
        return False


def learners_bin():
    """The bin folder of a kit environment that learners' accounts can run. As root
    with the kit's own venv built on a Python under /root (pyenv), a copy of the
    environment on the system's python3 (uv, from requirements.lock; cached in the
    temp folder per lock and clone, ~6 s the first time) stands in for the guide's
    "install the kit with the system's Python"."""
    if os.geteuid() != 0 or auth.runnable_by_learners(scenarios.BIN / "python"):
        return scenarios.BIN
    kit = HERE.parent.parent
    key = hashlib.sha1(b"".join([(kit / "requirements.lock").read_bytes(), (kit / "pyproject.toml").read_bytes(),
                                 str(kit).encode()])).hexdigest()[:12]
    venv = Path(tempfile.gettempdir()) / f"labapp-hub-venv-{key}"
    done = venv / ".labapp-complete"
    if done.exists():
        return venv / "bin"
    python = shutil.which("python3", path="/usr/bin:/usr/local/bin")
    uv = shutil.which("uv") or next((str(p) for p in (kit / ".venv-bootstrap" / "bin" / "uv", scenarios.BIN / "uv")
                                     if p.exists()), None)
    if not python or not uv or not auth.runnable_by_learners(python):
        raise RuntimeError("as root, learners need a kit environment on a Python they can run: "
                           "no /usr/bin/python3 or no uv here")
    version = ".".join(map(str, sys.version_info[:3]))  # the lock's floor, not Debian's 3.11.2 (see the guide)
    with open(f"{venv}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run building the same one: wait for it
        if not done.exists():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([uv, "venv", "-q", "--python", python, str(venv)], check=True, capture_output=True)
            subprocess.run([uv, "pip", "install", "-q", "--python-version", version,
                            "-r", str(kit / "requirements.lock"), "-e", str(kit)],
                           check=True, capture_output=True, env={**os.environ, "VIRTUAL_ENV": str(venv)})
            done.touch()
    return venv / "bin"


def pgdata_of(home, name):
    """Where the learner's embedded server keeps its data (labapp.server.pgserver, in
    their env, as their account: as root the answer would differ)."""
    env = {"HOME": str(home), "JUPYTERHUB_USER": name, "PATH": os.environ["PATH"]}
    account = {}
    if os.geteuid() == 0:
        try:
            entry = pwd.getpwnam(auth.account(name))
            account = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        except KeyError:
            pass
    python = learners_bin() / "python"
    out = subprocess.run([str(python), "-c", "from labapp.server import pgserver; print(pgserver.data_dir())"],
                         env=env, cwd="/", capture_output=True, text=True, timeout=60, **account)
    return Path(out.stdout.strip())


class Learner:
    def __init__(self, hub, name, token):
        self.hub, self.name, self.token = hub, name, token
        self.base = f"{hub.url}/user/{name}"

    @property
    def home(self):
        return self.hub.home(self.name)

    async def _call(self, method, path, body=None):
        request = HTTPRequest(f"{self.base}{path}", method=method, request_timeout=120,
                              headers={"Authorization": f"token {self.token}"},
                              body=None if method in ("GET", "DELETE") else json.dumps(body or {}),
                              **self.hub.ssl)
        response = await AsyncHTTPClient().fetch(request, raise_error=False)
        if response.code >= 400:
            raise RuntimeError(f"{self.name}: {method} {path}: {response.code} {response.body[:300]!r}")
        return json.loads(response.body) if response.body else None

    async def run(self, notebook, think=0.0, rng=None, timeout=300):
        """Run every code cell of `notebook` (a path under the learner's notebooks
        folder), `think` seconds apart (±50%, from `rng`). Returns the Cells."""
        path = self.home / "notebooks" / notebook
        book = nbformat.read(str(path), as_version=4)
        cells = [Cell(i, c.source, set(c.get("metadata", {}).get("tags", [])), c.get("outputs", []))
                 for i, c in enumerate(book.cells)
                 if c.cell_type == "code" and "nbval-skip" not in c.get("metadata", {}).get("tags", [])]
        session = await self._call("POST", "/api/sessions", {
            "path": notebook, "type": "notebook", "name": Path(notebook).name,
            "kernel": {"name": "python3"}})
        kernel = session["kernel"]["id"]
        channel = Channel(await websocket_connect(HTTPRequest(
            f"ws{self.base[4:]}/api/kernels/{kernel}/channels?session_id={uuid.uuid4().hex}",
            headers={"Authorization": f"token {self.token}"}, **self.hub.ssl), max_message_size=64 * 2**20))
        try:
            await channel.request("kernel_info_request", {}, timeout=60)
            for cell in cells:
                if think:
                    await asyncio.sleep(think * (rng or random).uniform(0.5, 1.5))
                started = time.monotonic()
                cell.outputs = await channel.execute(cell.source, timeout)
                cell.seconds = time.monotonic() - started
        finally:
            channel.close()
            await self._call("DELETE", f"/api/sessions/{session['id']}")
        return cells


class Channel:
    """Jupyter's messaging protocol over one kernel websocket (JSON frames)."""

    def __init__(self, ws):
        self.ws, self.session = ws, uuid.uuid4().hex

    def close(self):
        self.ws.close()

    def _send(self, msg_type, content, channel="shell"):
        msg_id = uuid.uuid4().hex
        self.ws.write_message(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": msg_type, "username": "driver",
                       "session": self.session, "date": "", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "content": content, "channel": channel,
            "buffers": []}))
        return msg_id

    async def _read(self, timeout):
        raw = await asyncio.wait_for(self.ws.read_message(), timeout)
        if raw is None:
            raise ConnectionError("the kernel's websocket closed")
        return json.loads(raw)

    async def request(self, msg_type, content, timeout):
        msg_id = self._send(msg_type, content)
        while True:
            msg = await self._read(timeout)
            if msg["parent_header"].get("msg_id") == msg_id and msg["channel"] == "shell":
                return msg["content"]

    async def execute(self, code, timeout):
        """Run `code`; its outputs as nbformat outputs, once the kernel is idle again."""
        msg_id = self._send("execute_request", {
            "code": code, "silent": False, "store_history": True, "user_expressions": {},
            "allow_stdin": False, "stop_on_error": True})
        outputs, idle, replied = [], False, False
        while not (idle and replied):
            msg = await self._read(timeout)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if msg["channel"] == "shell" and kind == "execute_reply":
                replied = True
            elif kind == "status":
                idle = content["execution_state"] == "idle"
            elif kind == "stream":
                outputs.append({"output_type": "stream", "name": content["name"], "text": content["text"]})
            elif kind in ("execute_result", "display_data"):
                output = {"output_type": kind, "data": content["data"], "metadata": content.get("metadata", {})}
                if kind == "execute_result":
                    output["execution_count"] = content.get("execution_count")
                outputs.append(output)
            elif kind == "error":
                outputs.append({"output_type": "error", "ename": content["ename"],
                                "evalue": content["evalue"], "traceback": content["traceback"]})
            elif kind == "clear_output":
                outputs = []
        return outputs


def learner_processes(name):
    """The processes that serve learner `name`: their server, its kernels and commands."""
    found = []
    for proc in psutil.process_iter(["name"]):
        try:
            if proc.info["name"] != "postgres" and proc.environ().get("JUPYTERHUB_USER") == name:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def postgres_processes(pgdata):
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        if proc.info["name"] == "postgres" and str(pgdata) in " ".join(proc.info["cmdline"] or []):
            found.append(proc)
    return found


def ensure_proxy():
    """configurable-http-proxy from npm, as package-lock.json pins it (`make hub` does the same)."""
    if not PROXY.exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(HERE)],
                       check=True, capture_output=True, timeout=300)
