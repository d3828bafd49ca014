"""Shared fixtures: a fresh database on the real server, and `flask` as a user runs it.

The server is the kit's embedded PostgreSQL, or the one DATABASE_URL names.
"""
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from labapp import config, create_app, database

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def unique_name(prefix="t"):
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def db_name(monkeypatch):
    """A fresh, empty database on the test server, dropped afterwards."""
    name = unique_name()
    monkeypatch.setenv("LABAPP_DATABASE", name)
    url = config.database_url()
    database.create_database(url)
    yield name
    database.drop_database(url, missing_ok=True)


@pytest.fixture
def db_url(db_name):
    return config.database_url()


@pytest.fixture
def app(db_url):
    return create_app({"SQLALCHEMY_DATABASE_URI": db_url, "TESTING": True})


@pytest.fixture
def schema(app):
    """The kit's tables, created from the models, in the fresh database."""
    from labapp import db

    with app.app_context():
        db.create_all()
    return app


def run_flask(*args, cwd=ROOT, env=None, input=None, timeout=60):
    """Run `flask --app labapp ARGS` as a user would; returns CompletedProcess
    with stdout and stderr merged into `.output`."""
    full_env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **(env or {})}
    full_env = {k: v for k, v in full_env.items() if v is not None}
    proc = subprocess.run(
        ["flask", "--app", "labapp", *args], cwd=cwd, env=full_env, input=input,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
    )
    proc.output = proc.stdout
    return proc


# what a sandbox must not inherit from the run that makes it
_NOT_INHERITED = ("DATABASE_URL", "LABAPP_DATABASE", "FLASK_APP", "PYTEST_ADDOPTS",
                  "PYTEST_CURRENT_TEST", "PYTEST_XDIST_WORKER", "PYTEST_XDIST_TESTRUNUID")


def make_sandbox(top):
    """Copy the kit's labapp/, notebooks/ and pyproject.toml under `top`; return the
    environment that imports that copy first (PYTHONPATH) and gives it an embedded
    server of its own (LABAPP_PGDATA), so runs there never touch the labs'
    databases and workspaces. Stop its server with stop_sandbox_server()."""
    ignore = shutil.ignore_patterns("workspaces", ".ipynb_checkpoints", "__pycache__")
    shutil.copytree(ROOT / "labapp", top / "labapp", ignore=ignore)
    shutil.copytree(ROOT / "notebooks", top / "notebooks", ignore=ignore)
    shutil.copyfile(ROOT / "pyproject.toml", top / "pyproject.toml")
    env = {**os.environ, "PYTHONPATH": str(top), "LABAPP_PGDATA": str(top / "pg"),
           "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    for name in _NOT_INHERITED:
        env.pop(name, None)
    return env


def stop_sandbox_server(top, env):
    subprocess.run([sys.executable, "-c", "from labapp import pgserver; pgserver.stop()"],
                   cwd=top, env=env, capture_output=True, timeout=60)


def stop_process(proc, timeout=20):
    """Terminate a server we started; kill it if it does not stop in `timeout` s."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def count_rows(url, table):
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()


def server_is_postgres():
    return make_url(config.database_url()).get_backend_name() == "postgresql"


# -- leave the embedded server as we found it ------------------------------------

def _controller(config):
    return not hasattr(config, "workerinput")  # not an xdist worker


def pytest_configure(config):
    if _controller(config) and not os.environ.get("DATABASE_URL"):
        from labapp import pgserver

        config._labapp_server_was_running = pgserver.is_running()


def pytest_unconfigure(config):
    """A run that started the embedded server stops it; one that found it
    running (a learner's JupyterLab uses it) leaves it be."""
    if getattr(config, "_labapp_server_was_running", True) is False:
        from labapp import pgserver

        pgserver.stop()
