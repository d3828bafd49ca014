"""The fixtures: a fresh database on the real server, an app and its runner on it,
a lab's chain in a workspace and under pytest-alembic; and the hooks that leave the
embedded server as the run found it. Plain helpers: tests/helpers.py.

The server is the kit's embedded PostgreSQL, or the one DATABASE_URL names.
Collecting the tests starts no server: only the fixtures do.
"""
import contextlib
import os
import shutil

import pytest

from helpers import alembic_runner, open_folder, rows, unique_name
from labapp import create_app
from labapp.room import roles
from labapp.runtime import labs
from labapp.server import config, database
from tools import chains


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


@pytest.fixture
def alembic_runner_for(db_url, request):
    """alembic_runner_for(folder): pytest-alembic's runner on the workspace
    `folder` (its migrations/ and models.py), against the fresh database."""
    with contextlib.ExitStack() as stack:
        yield lambda folder: alembic_runner(stack, folder, db_url, request.node.name)


# -- leave the embedded server as we found it ------------------------------------

@pytest.fixture
def admin(monkeypatch):
    """A room's instructor: DATABASE_URL = the test server as its administrator."""
    url = config.database_url("postgres")
    rows(url, "SELECT 1")  # started (the embedded server starts on a first connection)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.delenv("LABAPP_DATABASE", raising=False)
    return url


@pytest.fixture
def names(admin):
    """Four learners' names, unique to this run; their roles and databases dropped after."""
    found = [unique_name("t") for _ in range(4)]
    yield found
    roles.drop(found)


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
