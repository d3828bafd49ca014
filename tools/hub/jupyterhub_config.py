"""JupyterHub for a room running the labs: start from this file.

    make hub                      # installs the pinned proxy, then runs:
    jupyterhub -f tools/hub/jupyterhub_config.py

Everything a room changes is an environment variable of the hub (defaults in
brackets); the tests and `make bench-room` start the hub with this same file.

  LABAPP_ROOM_PASSWORD  the password everybody types, with any user name (8+ characters)
  LABAPP_ROOM_DATABASE_URL  a PostgreSQL server the whole room shares (each learner's
                        databases carry their name: alice__lab01); unset: each learner
                        gets their own embedded server
  LABAPP_ROOM_FILE      a learner -> URL file from `flask --app labapp room prepare`
                        (one role per learner, isolated databases); wins over the above
  LABAPP_HUB_HOMES      where learners' homes go when the hub runs as root without
                        system accounts [/srv/labapp/homes]
  LABAPP_HUB_SYSTEM_USERS=1  servers run as the system user of each learner's name
                        (the accounts must exist, or are made with useradd -m)
  LABAPP_HUB_IP, LABAPP_HUB_PORT  where learners connect [127.0.0.1:8000]
  LABAPP_HUB_STATE      the hub's own files (database, cookie secret) [.]
  LABAPP_ROOM_ADMIN     the instructor's user name, an admin [instructor]
  LABAPP_HUB_DRIVER_TOKEN  a service token for scripts that drive learners' servers
                        (tests, `make bench-room`); unset: no such service

Each learner's server starts in ~/notebooks, a copy of the kit's notebooks made at
their first login (`python -m labapp.runtime.notebooks copy`). When a server stops
(logout, the hub stopping, a culler), its embedded PostgreSQL stops with it.
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
BIN = Path(sys.executable).parent  # the hub runs from the kit's environment
PYTHON = str(BIN / "python")
ROOT = os.geteuid() == 0
SYSTEM_USERS = os.environ.get("LABAPP_HUB_SYSTEM_USERS") == "1"
STATE = Path(os.environ.get("LABAPP_HUB_STATE", ".")).absolute()

# -- who comes in: one shared password for the room ------------------------------
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = os.environ["LABAPP_ROOM_PASSWORD"]
c.Authenticator.allow_all = True  # any name: each person picks theirs
c.Authenticator.admin_users = {os.environ.get("LABAPP_ROOM_ADMIN", "instructor")}

# -- where: loopback unless told otherwise; the pinned proxy from npm -------------
c.JupyterHub.ip = os.environ.get("LABAPP_HUB_IP", "127.0.0.1")
c.JupyterHub.port = int(os.environ.get("LABAPP_HUB_PORT", "8000"))
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(os.environ.get("LABAPP_HUB_API_PORT", str(c.JupyterHub.port + 81)))
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{c.JupyterHub.port + 1}"
c.ConfigurableHTTPProxy.command = [str(HERE / "node_modules" / ".bin" / "configurable-http-proxy")]
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(STATE / "jupyterhub.pid")
c.JupyterHub.cleanup_servers = True  # the hub stopping stops every learner's server

# -- each learner's server ------------------------------------------------------
if SYSTEM_USERS or not ROOT:
    c.JupyterHub.spawner_class = "localprocess"  # as the learner's own account
else:  # root with no accounts for learners (a container, a demo): homes under one folder
    c.JupyterHub.spawner_class = "simple"
    c.SimpleLocalProcessSpawner.home_dir_template = os.environ.get(
        "LABAPP_HUB_HOMES", "/srv/labapp/homes") + "/{username}"
c.Spawner.cmd = [str(BIN / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab/tree/00-Welcome.ipynb"
c.Spawner.args = [
    f"--config={HERE.parent / 'jupyter_server_config.py'}",  # what `make lab` hides
    "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    *(["--allow-root"] if ROOT and not SYSTEM_USERS else []),
]
c.Spawner.http_timeout = 60
c.Spawner.start_timeout = 120


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
    if c.JupyterHub.spawner_class == "simple":
        return Path(spawner.home_dir)
    return Path(pwd.getpwnam(spawner.user.name).pw_dir)


def as_learner(spawner, args):
    """Run `args` (the kit's python) as the learner would: their home, their name,
    their account."""
    home = home_of(spawner)
    env = {"HOME": str(home), "JUPYTERHUB_USER": spawner.user.name,
           "PATH": c.Spawner.environment["PATH"], "DATABASE_URL": room_url(spawner)}
    account = {}
    if c.JupyterHub.spawner_class != "simple" and ROOT:
        entry = pwd.getpwnam(spawner.user.name)
        account = {"user": entry.pw_uid, "group": entry.pw_gid}
    return subprocess.run([PYTHON, *args], cwd=home, env=env, capture_output=True, text=True,
                          timeout=60, **account)


def copy_the_labs(spawner):
    """First login: the learner's own copy of the notebooks, in ~/notebooks."""
    if SYSTEM_USERS and ROOT:
        try:
            pwd.getpwnam(spawner.user.name)
        except KeyError:
            subprocess.run(["useradd", "-m", spawner.user.name], check=True)
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
    c.JupyterHub.services = [{"name": "labapp-driver",
                              "api_token": os.environ["LABAPP_HUB_DRIVER_TOKEN"]}]
    c.JupyterHub.load_roles = [{
        "name": "labapp-driver", "services": ["labapp-driver"],
        "scopes": ["admin:users", "admin:servers", "access:servers", "read:users", "tokens"],
    }]
