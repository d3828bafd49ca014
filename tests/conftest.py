"""Shared fixtures: a fresh database on the real server, a lab's chain in a
workspace, and `flask` run as a user runs it.

The server is the kit's embedded PostgreSQL, or the one DATABASE_URL names.
Collecting the tests starts no server: only the fixtures do.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from labapp.runtime import workspace
from labapp import create_app
from labapp.runtime import labs
from labapp.server import config, database
from tools import chains

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SAMPLE = workspace.SAMPLE_DATA


def unique_name(prefix="t"):
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def server_is_postgres():
    """Is the test server PostgreSQL? (Read from DATABASE_URL: starts nothing.)"""
    raw = os.environ.get("DATABASE_URL", "").strip()
    return not raw or config.normalize_url(raw).get_backend_name() == "postgresql"


postgres_only = pytest.mark.skipif(not server_is_postgres(), reason="needs PostgreSQL")


def open_folder(prefix="labapp-test-"):
    """A new folder under the temp dir that every user may enter (0755), for a
    LABAPP_PGDATA of a test's own: as root the embedded server runs as an OS user
    of its own, and the kit refuses a data folder inside a private one (pytest's
    tmp_path is one) rather than open it to all."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    return folder


def unusable_data_folder(pgdata):
    """Make `pgdata` a data folder the embedded server cannot use. As root: its files
    belong to another uid (the wheel's OS user re-created with a new uid, a container
    rebuilt over a kept volume). Otherwise: its log file may not be written.
    Returns what the one-line error must name."""
    env = {**os.environ, "LABAPP_PGDATA": str(pgdata)}
    env.pop("DATABASE_URL", None)
    for action in ("start", "stop"):
        subprocess.run([sys.executable, "-m", "flask", "--app", "labapp", "pgserver", action],
                       cwd=ROOT, env=env, check=True, capture_output=True, timeout=60)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        subprocess.run(["chown", "-R", "4242:4242", str(pgdata)], check=True)
        return "belongs to uid 4242"
    (pgdata / "log").chmod(0)
    return "may not write"


@pytest.fixture
def open_tmp():
    """open_folder() for one test, removed after it."""
    folder = open_folder()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def db_name(monkeypatch):
    """A fresh, empty database on the test server, dropped afterwards; `flask`
    commands run by the test (and labapp here) use it (LABAPP_DATABASE)."""
    name = unique_name()
    monkeypatch.setenv("LABAPP_DATABASE", name)
    url = config.database_url(name)
    database.create_database(url)
    yield name
    database.drop_database(url, missing_ok=True)


@pytest.fixture
def db_url(db_name):
    return config.database_url(db_name)


@pytest.fixture
def app(db_url):
    return create_app({"SQLALCHEMY_DATABASE_URI": db_url, "TESTING": True})


@pytest.fixture
def runner(app):
    """`flask` commands in this process (Flask's test runner), on the fresh database."""
    return app.test_cli_runner()


@pytest.fixture
def schema(app):
    """The kit's tables, created from the models, in the fresh database."""
    from labapp import db

    with app.app_context():
        db.create_all()
    return app


@pytest.fixture
def chain(tmp_path):
    """chain("lab04"): a workspace holding lab 04's end state (its app.py,
    models.py, migrations/ and DATA/), built from tests/chains/lab04.patch."""
    def build(name, folder=None):
        lab, _ = labs.get(name)
        return chains.build(lab, folder or tmp_path / name)

    return build


def run_flask(*args, cwd=ROOT, env=None, input=None, timeout=120, app="labapp"):
    """`flask --app APP ARGS` as a user runs it, in `cwd`; app=None: `flask`
    finds the folder's app.py, as in a lab's workspace. `env` adds to (None:
    removes from) this environment. Returns the CompletedProcess, stdout and
    stderr merged in `.output`."""
    full_env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **(env or {})}
    if app is None:
        full_env["FLASK_APP"] = None
    full_env = {k: v for k, v in full_env.items() if v is not None}
    proc = subprocess.run(
        ["flask", *(["--app", app] if app else []), *args], cwd=cwd, env=full_env, input=input,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
    )
    proc.output = proc.stdout
    return proc


SECRET = "s3cr3t-Pa55"  # a password that must never be printed


def assert_one_line_error(proc, *expected):
    """One line of error (Alembic's INFO log aside), a non-zero exit, no traceback,
    no password; the line holds every `expected` text."""
    lines = [line for line in proc.output.splitlines()
             if line.strip() and not line.startswith("INFO  [alembic")]
    assert proc.returncode != 0, proc.output
    assert len(lines) == 1, proc.output
    assert "Traceback" not in proc.output
    assert SECRET not in proc.output
    for text in expected:
        assert text in lines[0], proc.output


def count_rows(url, table):
    engine = database.quick_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()
    finally:
        engine.dispose()


def rows(url, query, **params):
    """All rows of `query` on `url`, as tuples (in a transaction that commits)."""
    engine = database.quick_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(query), params)
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        engine.dispose()


def stop_process(proc, timeout=20):
    """Terminate a server we started; kill it if it does not stop in `timeout` s."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- a sandbox: the kit copied, with a server of its own ---------------------------

# what a sandbox must not inherit from the run that makes it
_NOT_INHERITED = ("DATABASE_URL", "LABAPP_DATABASE", "FLASK_APP", "PYTEST_ADDOPTS",
                  "PYTEST_CURRENT_TEST", "PYTEST_XDIST_WORKER", "PYTEST_XDIST_TESTRUNUID")


def make_sandbox(top):
    """Copy the kit (labapp/, notebooks/, tests/, tools/, pyproject.toml, conftest.py) under `top`;
    return the environment that imports that copy first (PYTHONPATH) and gives it
    an embedded server of its own (LABAPP_PGDATA), so runs there never touch the
    labs' databases and workspaces. Stop its server with stop_sandbox_server()."""
    top.chmod(0o755)  # its server's data folder is in it: see open_folder()
    ignore = shutil.ignore_patterns("workspaces", ".ipynb_checkpoints", "__pycache__")
    for folder in ("labapp", "notebooks", "tests", "tools"):
        shutil.copytree(ROOT / folder, top / folder, ignore=ignore)
    for name in ("pyproject.toml", "conftest.py"):  # pytest's config; nbval's paths filled in
        shutil.copyfile(ROOT / name, top / name)
    env = {**os.environ, "PYTHONPATH": str(top), "LABAPP_PGDATA": str(top / "pg"),
           "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    for name in _NOT_INHERITED:
        env.pop(name, None)
    return env


def stop_sandbox_server(top, env):
    subprocess.run([sys.executable, "-c", "from labapp.server import pgserver; pgserver.stop()"],
                   cwd=top, env=env, capture_output=True, timeout=60)


# -- leave the embedded server as we found it ------------------------------------

def _controller(config):
    return not hasattr(config, "workerinput")  # not an xdist worker


def pytest_configure(config):
    if _controller(config):
        from labapp.server import pgserver
        from labapp.errors import LabError

        try:
            config._labapp_server_was_running = pgserver.is_running()
        except LabError:  # no embedded server on this machine: DATABASE_URL runs only
            if not os.environ.get("DATABASE_URL"):
                raise


def pytest_unconfigure(config):
    """A run that started the embedded server stops it; one that found it
    running (a learner's JupyterLab uses it) leaves it be. A DATABASE_URL run
    too: its tests of the embedded default start it (test_factory)."""
    if getattr(config, "_labapp_server_was_running", True) is False:
        from labapp.server import pgserver

        pgserver.stop()
