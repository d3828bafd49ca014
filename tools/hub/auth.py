"""Who logs in to the room's hub, and as which account their server runs
(tools/hub/jupyterhub_config.py loads both).

    c.JupyterHub.authenticator_class = RosterAuthenticator   # LABAPP_HUB_ROSTER names the file
    c.JupyterHub.spawner_class = LearnerSpawner              # hub as root: jupyter-<name>

RosterAuthenticator: only the names on the roster (labapp.room.roster), each with
their own password; a name that is not on it (a typo) is refused with one line
that says so, and gets no server the live view cannot see. The roster is read
again at each login, so a learner added during the day needs no restart.

LearnerSpawner: as The Littlest JupyterHub does, each learner's server runs as a
system account of their own, `jupyter-<name>` (made with `useradd` at their first
login), never as root; the prefix keeps a learner called `root` or `postgres`
away from those accounts.
"""
import pwd
import subprocess
from pathlib import Path

from jupyterhub.auth import Authenticator
from jupyterhub.spawner import LocalProcessSpawner
from tornado import web
from traitlets import Unicode

from labapp.errors import LabError
from labapp.room import roster

PREFIX = "jupyter-"


class RosterAuthenticator(Authenticator):
    roster_file = Unicode(config=True, help="The roster: `name password [admin]` per line.")

    def load(self):
        return roster.load(self.roster_file)

    def check_allow_config(self):
        self.load()  # a broken roster stops the hub at start, with its one line

    async def authenticate(self, handler, data):
        room = self.load()
        name = (data.get("username") or "").strip().lower()
        if name not in room.passwords:
            # one line on the login page: a typo must not become a second, invisible learner
            raise web.HTTPError(403, f"{name!r} is not on this room's roster: check the "
                                     "spelling on your slip, or ask the instructor")
        if not room.check(name, data.get("password")):
            return None  # "Invalid username or password"
        return {"name": name, "admin": name in room.admins}

    def check_allowed(self, username, authentication=None):
        try:
            return username in self.load().passwords
        except LabError:
            return False


def runnable_by_learners(path):
    """Can another account run `path`: every folder above it open to others (o+x)?
    A Python under /root (pyenv's, 0700) is not: learners' servers could not start."""
    path = Path(path).absolute()
    for folder in path.resolve().parents:
        if not folder.stat().st_mode & 0o001:
            return False
    return bool(path.resolve().stat().st_mode & 0o001)


def account(name):
    return PREFIX + name


def ensure_account(name):
    """The learner's system account, made on first use (home 0700: learners can't
    read each other's work)."""
    try:
        return pwd.getpwnam(account(name))
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", "--comment",
                        f"labapp learner {name}", account(name)], check=True, capture_output=True)
        entry = pwd.getpwnam(account(name))
        subprocess.run(["chmod", "700", entry.pw_dir], check=True)
        return entry


class LearnerSpawner(LocalProcessSpawner):
    """LocalProcessSpawner, with the learner's server run as `jupyter-<name>`."""

    @property
    def account(self):
        return account(self.user.name)

    def make_preexec_fn(self, name):
        return super().make_preexec_fn(self.account)

    def user_env(self, env):
        entry = pwd.getpwnam(self.account)
        env.update(USER=self.account, HOME=entry.pw_dir, SHELL=entry.pw_shell or "/bin/bash")
        return env

    async def move_certs(self, paths):  # internal SSL is not used; keep the base's account out
        return paths
