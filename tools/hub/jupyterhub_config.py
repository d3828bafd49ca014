"""JupyterHub for a room running the labs: start from this file.

    make hub HUB_ENV=/etc/labapp/hub.env       # or tools/hub/labapp-hub.service (systemd)
    jupyterhub -f tools/hub/jupyterhub_config.py

Everything a room changes is an environment variable of the hub, set in ONE
file, hub.env (copy tools/hub/hub.env.example; `make hub` and the systemd unit
both read it). Defaults in brackets; the tests and `make bench-room` start the
hub with this same file.

  LABAPP_HUB_ROSTER     the roster: `name password [admin]` per line, made by
                        `flask --app labapp room roster NAMES... --out roster.txt`
                        (required). Only these names log in, each with their own
                        password; a name not on it is refused with one line; the
                        line marked `admin` (the instructor) gets the admin panel.
  LABAPP_HUB_IP, LABAPP_HUB_PORT  where learners connect [127.0.0.1:8000]; on a VM
                        that learners reach over the internet: 0.0.0.0 and 443
  LABAPP_HUB_SSL_CERT, LABAPP_HUB_SSL_KEY  HTTPS: the certificate (full chain) and
                        its key, PEM files (e.g. Let's Encrypt's fullchain.pem and
                        privkey.pem); unset: plain HTTP (loopback or behind a proxy only)
  LABAPP_HUB_CULL_IDLE  seconds a learner's server may sit idle before the idle
                        culler (jupyterhub-idle-culler) stops it [3600]; 0: never.
                        Their files and databases stay: the next login resumes.
  LABAPP_ROOM_DATABASE_URL  a PostgreSQL server the whole room shares (each learner's
                        databases carry their name: alice__lab01); unset: each learner
                        gets their own embedded server
  LABAPP_ROOM_FILE      a learner -> URL file from `flask --app labapp room prepare`
                        (one role per learner, isolated databases); wins over the above
  LABAPP_HUB_HOMES      learners' homes when the hub does NOT run as root [./homes]
  LABAPP_HUB_STATE      the hub's own files (database, cookie secret) [.]
  LABAPP_HUB_DRIVER_TOKEN  a service token for scripts that drive learners' servers
                        (tests, `make bench-room`); unset: no such service

Who runs what. As root (a VM, as The Littlest JupyterHub runs): each learner's
server runs as their own system account `jupyter-<name>` (made at first login,
home 0700), never as root; the hub and its proxy stay root (port 443, the
certificate). Not as root: every learner's server runs as the hub's own
account, with homes under LABAPP_HUB_HOMES (no isolation between learners: a
demo, not strangers).

Each learner's server starts in ~/notebooks, a copy of the kit's notebooks made at
their first login (`python -m labapp.runtime.notebooks copy`; a later login keeps
what is there). When a server stops (logout, the hub stopping, the culler), its
embedded PostgreSQL stops with it; its data stays in the learner's home.
The room's DATABASE_URL reaches learners' servers through Spawner.environment:
only a few variables of the hub's own environment (env_keep) ever reach them.
"""
import json
import os
import pwd
import subprocess
import sys
from pathlib import Path

c = get_config()  # noqa: F821 (JupyterHub's config loader provides it)

HERE = Path(__file__).resolve().parent
KIT = HERE.parent.parent
sys.path.insert(0, str(KIT))  # tools.hub.auth and labapp, from this kit
from tools.hub import auth  # noqa: E402 (needs the line above)
from labapp.room import roster  # noqa: E402

BIN = Path(sys.executable).parent  # the hub runs from the kit's environment
PYTHON = str(BIN / "python")
ROOT = os.geteuid() == 0
STATE = Path(os.environ.get("LABAPP_HUB_STATE", ".")).absolute()
ROSTER = os.environ.get("LABAPP_HUB_ROSTER")
if not ROSTER:
    sys.exit("LABAPP_HUB_ROSTER is not set: make a roster with "
             "`flask --app labapp room roster NAMES... --out roster.txt` and name it in hub.env")

# -- who comes in: the names on the roster, each with their own password ------------
c.JupyterHub.authenticator_class = auth.RosterAuthenticator
c.RosterAuthenticator.roster_file = str(Path(ROSTER).absolute())
c.Authenticator.admin_users = roster.load(ROSTER).admins  # the instructor: the admin panel

# -- where: loopback unless hub.env says otherwise; HTTPS with the room's certificate --
c.JupyterHub.ip = os.environ.get("LABAPP_HUB_IP", "127.0.0.1")
c.JupyterHub.port = int(os.environ.get("LABAPP_HUB_PORT", "8000"))
if os.environ.get("LABAPP_HUB_SSL_CERT") or os.environ.get("LABAPP_HUB_SSL_KEY"):
    c.JupyterHub.ssl_cert = os.environ["LABAPP_HUB_SSL_CERT"]
    c.JupyterHub.ssl_key = os.environ["LABAPP_HUB_SSL_KEY"]
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(os.environ.get("LABAPP_HUB_API_PORT", str(c.JupyterHub.port + 81)))
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{c.JupyterHub.port + 1}"
c.ConfigurableHTTPProxy.command = [str(HERE / "node_modules" / ".bin" / "configurable-http-proxy")]
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(STATE / "jupyterhub.pid")
c.JupyterHub.cleanup_servers = True  # the hub stopping stops every learner's server

# -- each learner's server: never root ------------------------------------------------
if ROOT and not auth.runnable_by_learners(PYTHON):
    sys.exit(f"learners' accounts cannot run {Path(PYTHON).resolve()} (a folder above it is "
             "closed to others, e.g. /root): install the kit with a Python outside /root "
             "(the system's python3), see the guide's hub section")
if ROOT:  # their own system account, jupyter-<name>
    c.JupyterHub.spawner_class = auth.LearnerSpawner
else:  # the hub's own account for everyone, homes under one folder
    c.JupyterHub.spawner_class = "simple"
    c.SimpleLocalProcessSpawner.home_dir_template = str(
        Path(os.environ.get("LABAPP_HUB_HOMES", "homes")).absolute()) + "/{username}"
c.Spawner.cmd = [str(BIN / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab/tree/00-Welcome.ipynb"
c.Spawner.args = [
    f"--config={HERE.parent / 'jupyter_server_config.py'}",  # what `make lab` hides
    "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
]
c.Spawner.http_timeout = 60
c.Spawner.start_timeout = 120

# -- the idle culler: a server idle this long stops (files and databases stay) --------
CULL_IDLE = int(os.environ.get("LABAPP_HUB_CULL_IDLE", "3600"))
services = []
roles = []
if CULL_IDLE:
    services.append({"name": "idle-culler", "command": [
        PYTHON, "-m", "jupyterhub_idle_culler", f"--timeout={CULL_IDLE}",
        f"--cull-every={max(5, min(300, CULL_IDLE // 4))}"]})
    roles.append({"name": "idle-culler", "services": ["idle-culler"],
                  "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]})


def room_url(spawner):
    """The learner's DATABASE_URL: their own line in the room file, the room's shared
    server, or none (each learner's own embedded server)."""
    room_file = os.environ.get("LABAPP_ROOM_FILE")
    if room_file:
        learners = json.loads(Path(room_file).read_text())["learners"]
        return learners.get(spawner.user.name, {}).get("url", "")
    return os.environ.get("LABAPP_ROOM_DATABASE_URL", "")


c.Spawner.environment = {
    "DATABASE_URL": room_url,
    "PATH": f"{BIN}{os.pathsep}/usr/local/bin:/usr/bin:/bin",
    "JUPYTER_PREFER_ENV_PATH": "1",
}


def home_of(spawner):
    if ROOT:
        return Path(pwd.getpwnam(auth.account(spawner.user.name)).pw_dir)
    return Path(spawner.home_dir)


def as_learner(spawner, args):
    """Run `args` (the kit's python) as the learner would: their home, their name,
    their account."""
    home = home_of(spawner)
    env = {"HOME": str(home), "JUPYTERHUB_USER": spawner.user.name,
           "PATH": c.Spawner.environment["PATH"], "DATABASE_URL": room_url(spawner)}
    account = {}
    if ROOT:
        entry = pwd.getpwnam(auth.account(spawner.user.name))
        account = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    return subprocess.run([PYTHON, *args], cwd=home, env=env, capture_output=True, text=True,
                          timeout=60, **account)


def copy_the_labs(spawner):
    """First login: the learner's account and their own copy of the notebooks, in
    ~/notebooks (a later login adds only what is missing: their edits stay)."""
    if ROOT:
        auth.ensure_account(spawner.user.name)
    home = home_of(spawner)
    home.mkdir(mode=0o755, parents=True, exist_ok=True)
    done = as_learner(spawner, ["-m", "labapp.runtime.notebooks", "copy", str(home / "notebooks")])
    if done.returncode:
        raise RuntimeError(f"could not copy the labs for {spawner.user.name}: {done.stderr}")
    spawner.notebook_dir = str(home / "notebooks")


def stop_the_embedded_server(spawner):
    """The learner's embedded PostgreSQL stops with their server (it would outlive it)."""
    done = as_learner(spawner, ["-c", "from labapp.server import pgserver; pgserver.stop()"])
    if done.returncode:
        spawner.log.warning("stopping %s's embedded PostgreSQL: %s", spawner.user.name, done.stderr)


c.Spawner.pre_spawn_hook = copy_the_labs
c.Spawner.post_stop_hook = stop_the_embedded_server

# -- scripts that drive learners' servers (tests, make bench-room) ------------------
if os.environ.get("LABAPP_HUB_DRIVER_TOKEN"):
    services.append({"name": "labapp-driver", "api_token": os.environ["LABAPP_HUB_DRIVER_TOKEN"]})
    roles.append({
        "name": "labapp-driver", "services": ["labapp-driver"],
        "scopes": ["admin:users", "admin:servers", "access:servers", "read:users", "tokens"],
    })
if services:
    c.JupyterHub.services = services
    c.JupyterHub.load_roles = roles
