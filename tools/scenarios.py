"""What the tests and the tools both build, in one importable module (as Alembic's
alembic/testing/env.py keeps its environment builders): the environment a child
process gets, free ports, a sandbox (the kit copied, with a server of its own),
lab 03's replay project, and lab 04's enum swap as SQL.

    from tools import scenarios
    env = scenarios.environment(scenarios.KIT_SETTINGS, LABAPP_PGDATA=str(pgdata))
    with scenarios.sandbox("lbr-") as (top, env):        # a copy of the kit, its own server
        ...
    project = scenarios.make_project(tmp / "crm", "lab03")   # production + master + DATA/
    statements = scenarios.swap_through_temporary_type(["USD", "EUR", "BTC"])

tests/conftest.py's fixtures and tests/helpers.py build on it, and so does the
benchmark (tools/bench/); it imports nothing from tests/.
"""
import contextlib
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from labapp.runtime import workspace

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the venv's bin: its `flask`, `jupyter`, `pytest`

# -- a child process's environment ------------------------------------------------

# the kit's settings (labapp/settings.py, and Flask's FLASK_APP): a child that must pick
# its own server, database or learner does not inherit them
KIT_SETTINGS = ("DATABASE_URL", "LABAPP_DATABASE", "LABAPP_PGDATA", "LABAPP_LEARNER",
                "JUPYTERHUB_USER", "FLASK_APP")
# what pytest (and xdist) set for the run around: a nested pytest run is a run of its own
PYTEST_RUN = ("PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST", "PYTEST_XDIST_WORKER",
              "PYTEST_XDIST_TESTRUNUID")


def environment(*drop, **changes):
    """This process's environment for a child: the venv's bin first on PATH, the
    variables in `drop` removed (names, or groups such as KIT_SETTINGS), then
    `changes` set (a value of None removes the variable)."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    for item in drop:
        for name in ((item,) if isinstance(item, str) else item):
            env.pop(name, None)
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = str(value)
    return env


def run(args, cwd=ROOT, env=None, input=None, timeout=120):
    """`args` as a user runs them, stdout and stderr merged in `.output`."""
    proc = subprocess.run(args, cwd=cwd, env=env, input=input, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)
    proc.output = proc.stdout
    return proc


# -- ports -------------------------------------------------------------------------

def free_port():
    """A port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_block(size=2):
    """A port P with P..P+size-1 free on 127.0.0.1 (a hub's proxy takes P and P+1)."""
    for _ in range(200):
        base = random.randint(20000, 40000)
        try:
            sockets = []
            for port in range(base, base + size):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free ports on 127.0.0.1")


def answers(url, timeout=2):
    """Does `url` answer 200 now (a server that has started)?"""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


# -- a sandbox: the kit copied, with a server of its own ----------------------------

def make_sandbox(top, pgdata="pg", **changes):
    """Copy the kit (labapp/, notebooks/, tests/, tools/, pyproject.toml, conftest.py)
    under `top`; return the environment that imports that copy first (PYTHONPATH)
    and gives it an embedded server of its own (LABAPP_PGDATA: top/pgdata), with
    `changes`, so runs there never touch the labs' databases and workspaces. Stop
    its server with stop_sandbox_server()."""
    top.chmod(0o755)  # its server's data folder is in it: as root, a private one is refused
    ignore = shutil.ignore_patterns("workspaces", ".ipynb_checkpoints", "__pycache__")
    for folder in ("labapp", "notebooks", "tests", "tools"):
        shutil.copytree(ROOT / folder, top / folder, ignore=ignore)
    for name in ("pyproject.toml", "conftest.py"):  # pytest's config; nbval's paths filled in
        shutil.copyfile(ROOT / name, top / name)
    return environment(KIT_SETTINGS, PYTEST_RUN, PYTHONPATH=top, LABAPP_PGDATA=top / pgdata,
                       **changes)


def stop_sandbox_server(top, env):
    subprocess.run([sys.executable, "-c", "from labapp.server import pgserver; pgserver.stop()"],
                   cwd=top, env=env, capture_output=True, timeout=60)


OWNER = ".sandbox-owner"  # in a sandbox's folder: "<pid> <its start time> <pgdata>"


def _started(pid):
    """When process `pid` started (psutil's, as text), or None if it is gone: a pid alone
    can be reused by another process. (psutil, not /proc: macOS has no /proc, and a
    None for every owner would make live sandboxes look abandoned.)"""
    import psutil

    try:
        return repr(psutil.Process(int(pid)).create_time())
    except (psutil.Error, ValueError):
        return None


def sweep_abandoned_sandboxes():
    """Stop the server of, and remove, every sandbox whose owner died without its cleanup
    (a test run killed with -9, a closed terminal): its embedded server would run on."""
    for mark in Path("/tmp").glob(f"*/{OWNER}"):
        try:
            pid, started, pgdata = mark.read_text().split(" ", 2)
        except (OSError, ValueError):
            continue
        if _started(pid) == started:
            continue  # its owner runs: another test run's, in use
        top = mark.parent
        stop_sandbox_server(top, environment(KIT_SETTINGS, PYTEST_RUN, PYTHONPATH=top,
                                             LABAPP_PGDATA=top / pgdata))
        shutil.rmtree(top, ignore_errors=True)


@contextlib.contextmanager
def sandbox(prefix, pgdata="pg", **changes):
    """A sandbox in a new folder of /tmp (short: its server's socket path is in it):
    (its folder, its environment); its server stopped and the folder removed after, or by
    the next sandbox made if this process is killed first."""
    sweep_abandoned_sandboxes()
    top = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    (top / OWNER).write_text(f"{os.getpid()} {_started(os.getpid())} {pgdata}")
    env = make_sandbox(top, pgdata, **changes)
    try:
        yield top, env
    finally:
        stop_sandbox_server(top, env)
        shutil.rmtree(top, ignore_errors=True)


# -- lab 03's project: a `production` branch to replay ----------------------------

PHONES = {"1": "+44 20 7946 0001", "2": "+1 202 555 0102", "4": "+1 757 555 0104"}
PHONE_COLUMN = (
    "    email = db.Column(db.String(200), nullable=False, unique=True)\n",
    "    email = db.Column(db.String(200), nullable=False, unique=True)\n"
    "    phone = db.Column(db.String(30))\n",
)
CLOSED_AT = (
    '    currency = db.Column(db.Enum(DealCurrency, name="dealcurrency"), nullable=False)\n',
    '    currency = db.Column(db.Enum(DealCurrency, name="dealcurrency"), nullable=False)\n'
    "    closed_at = db.Column(db.DateTime)\n"
    '    __table_args__ = (db.UniqueConstraint("contact_id", "title", name="uq_deals_contact_title"),)\n',
)

REVISION_0002 = '''"""add contact phone

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-02 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('contacts', sa.Column('phone', sa.String(length=30), nullable=True))


def downgrade():
    op.drop_column('contacts', 'phone')
'''

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Lab Three", "GIT_AUTHOR_EMAIL": "lab03@example.com",
    "GIT_COMMITTER_NAME": "Lab Three", "GIT_COMMITTER_EMAIL": "lab03@example.com",
    "GIT_AUTHOR_DATE": "2026-11-01T09:00:00Z", "GIT_COMMITTER_DATE": "2026-11-01T09:00:00Z",
    "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
}


def edited(text, *changes):
    for old, new in changes:
        assert old in text
        text = text.replace(old, new)
    return text


def flask_executable(args, cwd, env):
    """The `flask` executable with `args`, as a user runs it."""
    return run(["flask", *args], cwd=cwd, env=env)


class Project:
    """A checkout on `master` with an ignored DATA/, and a `production` branch;
    its `flask` commands use the database `db_name` (LABAPP_DATABASE). `flask`:
    what runs them, given (args, cwd, env); the tests' forks the command
    (tests/flask_fork.py)."""

    def __init__(self, path, db_name, flask=flask_executable):
        self.path, self.db_name, self._flask = path, db_name, flask
        self.env = environment("FLASK_APP", **GIT_ENV, LABAPP_DATABASE=db_name,
                               PYTHONDONTWRITEBYTECODE="1", GIT_CEILING_DIRECTORIES=path.parent)

    def git(self, *args, check=True):
        proc = subprocess.run(["git", *args], cwd=self.path, env=self.env, capture_output=True,
                              text=True, timeout=30)
        if check:
            assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def flask(self, *args, env=None):
        """`flask --app app ARGS` in the checkout; stdout and stderr in `.output`."""
        return self._flask(["--app", "app", *args], cwd=self.path, env={**self.env, **(env or {})})

    def leftovers(self):
        """The command's temporary folders still there (it names them after its database)."""
        return sorted(Path(tempfile.gettempdir()).glob(f"replay-production-{self.db_name}_*"))

    def write(self, name, text):
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def files(self):
        """{path: bytes} of the working tree, .git/ and ignored folders included."""
        return {str(p.relative_to(self.path)): p.read_bytes() for p in sorted(self.path.rglob("*"))
                if p.is_file() and ".git" not in p.relative_to(self.path).parts}

    def state(self):
        """What a user would notice changed in the repository."""
        return {"files": self.files(),
                "status": self.git("status", "--porcelain", "--ignored"),
                "branch": self.git("branch", "--show-current"),
                "refs": self.git("for-each-ref", "--format=%(refname) %(objectname)"),
                "worktrees": self.git("worktree", "list", "--porcelain"),
                "stash": self.git("stash", "list")}


def make_project(path, db_name, flask=flask_executable):
    """master (migrations/ ignored, newer models) + production (0001, 0002 committed),
    and an ignored DATA/ snapshot, in the new folder `path`."""
    path.mkdir()
    p = Project(path, db_name, flask)
    base_models = workspace.MODELS.read_text()
    shutil.copyfile(workspace.APP, path / "app.py")
    p.write("models.py", base_models)
    p.write(".gitignore", "__pycache__/\nDATA/\nmigrations/\n")
    p.git("-c", "init.defaultBranch=master", "init", "-q", "-b", "master")
    p.git("add", "-A")
    p.git("commit", "-q", "-m", "crm app")

    p.git("switch", "-q", "-c", "production")
    p.write(".gitignore", "__pycache__/\nDATA/\n")
    p.write("models.py", edited(base_models, PHONE_COLUMN))
    workspace.init_migrations(path / "migrations")
    shutil.copyfile(workspace.FIRST_REVISION, path / "migrations" / "versions" / workspace.FIRST_REVISION.name)
    p.write("migrations/versions/0002_add_contact_phone.py", REVISION_0002)
    p.git("add", "-A")
    p.git("commit", "-q", "-m", "release 2: migrations 0001, 0002")

    p.git("switch", "-q", "master")
    assert not (path / "migrations" / "env.py").exists()  # not tracked on master
    p.write("models.py", edited(base_models, PHONE_COLUMN, CLOSED_AT))
    p.git("commit", "-q", "-am", "contacts.phone, deals.closed_at")

    # production's DATA snapshot: the sample rows, contacts with a phone column
    shutil.copytree(workspace.SAMPLE_DATA, path / "DATA")
    lines = (path / "DATA" / "contacts.csv").read_text().splitlines()
    rows = [lines[0] + ",phone"] + [f"{line},{PHONES.get(line.split(',')[0], '')}" for line in lines[1:]]
    p.write("DATA/contacts.csv", "\n".join(rows) + "\n")
    assert p.git("status", "--porcelain") == ""
    return p


def replica_url(db_url):
    """The scratch database `flask replay-production` builds beside `db_url`'s."""
    from sqlalchemy.engine import make_url  # here: the sandbox and the hub's driver need no SQLAlchemy

    url = make_url(db_url)
    return url.set(database=f"{url.database}_replay").render_as_string(hide_password=False)


# -- lab 04's enum swap, as SQL ------------------------------------------------------

def _quoted(labels):
    return ", ".join(f"'{label}'" for label in labels)


def swap_through_temporary_type(labels, schema=""):
    """The team's recipe in lab 04: the column cast to a temporary type
    `_dealcurrency` with `labels`, the old type dropped and made again with them,
    the column cast back: two table rewrites under ACCESS EXCLUSIVE. `schema`:
    "observatory." for the observatory's copy of deals."""
    return [f"CREATE TYPE {schema}_dealcurrency AS ENUM ({_quoted(labels)})",
            f"ALTER TABLE {schema}deals ALTER COLUMN currency TYPE {schema}_dealcurrency"
            f" USING currency::text::{schema}_dealcurrency",
            f"DROP TYPE {schema}dealcurrency",
            f"CREATE TYPE {schema}dealcurrency AS ENUM ({_quoted(labels)})",
            f"ALTER TABLE {schema}deals ALTER COLUMN currency TYPE {schema}dealcurrency"
            f" USING currency::text::{schema}dealcurrency",
            f"DROP TYPE {schema}_dealcurrency"]


def swap_renaming_the_old_type(labels, schema=""):
    """Lab 04's variant: the old type renamed away, the new one made with `labels`,
    one cast: one table rewrite."""
    return [f"ALTER TYPE {schema}dealcurrency RENAME TO _dealcurrency",
            f"CREATE TYPE {schema}dealcurrency AS ENUM ({_quoted(labels)})",
            f"ALTER TABLE {schema}deals ALTER COLUMN currency TYPE {schema}dealcurrency"
            f" USING currency::text::{schema}dealcurrency",
            f"DROP TYPE {schema}_dealcurrency"]


# -- lab 09: a data migration that takes a moment (the replica storm) ---------------

def amount_cents_revision(autocommit=False):
    """Revision 0002 of lab 09's storm: a column, filled from every deal. autocommit=True:
    the fill runs in an autocommit_block (which commits the revision's transaction so far)."""
    fill = 'op.execute("UPDATE deals SET amount_cents = amount * 100")'
    if autocommit:
        fill = ("with op.get_context().autocommit_block():  # commits the transaction so far\n"
                f"        {fill}")
    return f'''"""deal amount in cents{", filled outside the revision's transaction" if autocommit else ""}

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("deals", sa.Column("amount_cents", sa.BigInteger()))
    {fill}


def downgrade():
    op.drop_column("deals", "amount_cents")
'''
