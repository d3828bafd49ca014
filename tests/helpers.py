"""What more than one test file needs that is not a fixture: `flask` run as a user
runs it, rows of a database, folders for a server of a test's own, a lab's chain
under pytest-alembic, another Python, a notebook run in a real kernel.

    from helpers import ROOT, flask_in, rows, postgres_only

Test files import this module (and tools/scenarios.py, what the tools share), never
each other nor conftest.py; tests/conftest.py holds the fixtures, built on these.
"""
import contextlib
import glob
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy
from pytest_alembic import runner
from pytest_alembic.config import Config

import flask_fork
import labapp.crm
from labapp.app import create_app
from labapp.runtime import lab, labs, workspace
from labapp.server import config, database, learners
from tools import scenarios
from tools.scenarios import BIN, ROOT  # noqa: F401  (the tests' names for them)

SAMPLE = workspace.SAMPLE_DATA
SECRET = "s3cr3t-Pa55"  # a password that must never be printed


def unique_name(prefix="t"):
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def server_is_postgres():
    """Is the test server PostgreSQL? (Read from DATABASE_URL: starts nothing.)"""
    raw = os.environ.get("DATABASE_URL", "").strip()
    return not raw or config.normalize_url(raw).get_backend_name() == "postgresql"


postgres_only = pytest.mark.skipif(not server_is_postgres(), reason="needs PostgreSQL")


def mariadb_reachable():
    """Does something listen on MariaDB's port here (the CI machine has one)?"""
    try:
        socket.create_connection(("127.0.0.1", 3306), timeout=1).close()
        return True
    except OSError:
        return False


def schema_errors(schema, *files):
    """check-jsonschema's verdict on each of `files` against its built-in `schema`,
    all in one run (each run spends ~1.5 s of CPU starting): {str(file): [messages]}."""
    proc = subprocess.run([BIN / "check-jsonschema", "--builtin-schema", schema, "-o", "json",
                           *map(str, files)], capture_output=True, text=True)
    report = json.loads(proc.stdout)
    assert not report["parse_errors"], report
    found = {str(file): [] for file in files}
    for error in report["errors"]:
        found[error["filename"]].append(f'{error["path"]}: {error["message"]}')
    assert (proc.returncode == 0) == (not any(found.values())), proc.stdout + proc.stderr
    return found


# -- `flask` as a user runs it ----------------------------------------------------

def run_flask(*args, cwd=ROOT, env=None, input=None, timeout=120, app="labapp", fresh=False):
    """`flask --app APP ARGS` as a user runs it, in `cwd`; app=None: `flask`
    finds the folder's app.py, as in a lab's workspace. `env` adds to (None:
    removes from) this environment. Returns the CompletedProcess, stdout and
    stderr merged in `.output`. The process is forked from one that has imported
    the app already (tests/flask_fork.py: a third of the suite's CPU was `flask`
    importing it); fresh=True starts the `flask` executable itself, for a test of
    how it starts."""
    changes = {**({"FLASK_APP": None} if app is None else {}), **(env or {})}
    command = [*(["--app", app] if app else []), *args]
    environment = scenarios.environment(**changes)
    if fresh or not hasattr(os, "fork"):
        return scenarios.run(["flask", *command], cwd=cwd, env=environment, input=input,
                             timeout=timeout)
    return flask_fork.run(command, cwd=cwd, env=environment, input=input, timeout=timeout)


def flask_in(folder, *args, check=False, env=None, timeout=120, fresh=False):
    """`flask ARGS` in `folder` (a lab's workspace, a project), as a learner's `!flask`
    runs it: the folder's app.py, LABAPP_DATABASE the test's database. check=True:
    it must succeed."""
    proc = run_flask(*args, cwd=folder, app=None, env=env, timeout=timeout, fresh=fresh)
    if check:
        assert proc.returncode == 0, proc.output
    return proc


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


# -- what a database holds --------------------------------------------------------

def rows(url, query, **params):
    """All rows of `query` on `url`, as tuples (in a transaction that commits)."""
    engine = database.quick_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(query), params)
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        engine.dispose()


def count_rows(url, table):
    return rows(url, f"SELECT count(*) FROM {table}")[0][0]


def alembic_versions(url):
    """The revisions alembic_version holds (one per head)."""
    return [version for (version,) in rows(url, "SELECT version_num FROM alembic_version")]


def column_names(url, table):
    """The columns of a table of the public schema, in their order."""
    return [name for (name,) in rows(url, "SELECT column_name FROM information_schema.columns"
                                          " WHERE table_schema = 'public' AND table_name = :t"
                                          " ORDER BY ordinal_position", t=table)]


def enum_labels(url, type_name="dealcurrency", schema="public"):
    """The labels of an enum type, in their order."""
    return [label for (label,) in rows(
        url, "SELECT e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid"
             " JOIN pg_namespace n ON n.oid = t.typnamespace"
             " WHERE t.typname = :t AND n.nspname = :s ORDER BY e.enumsortorder",
        t=type_name, s=schema)]


def revision_source(revision, down_revision, upgrade, downgrade="    pass\n", doc=None):
    """The text of an Alembic revision file that a test writes: `upgrade` and
    `downgrade` are the bodies of its two functions (indented lines)."""
    return (f'"""{doc or "revision " + revision}"""\n'
            "from alembic import op\nimport sqlalchemy as sa\n\n"
            f"revision = {revision!r}\ndown_revision = {down_revision!r}\n"
            "branch_labels = None\ndepends_on = None\n\n\n"
            f"def upgrade():\n{upgrade}\n\n"
            f"def downgrade():\n{downgrade}")


# -- processes and folders of a test's own ------------------------------------------

def stop_process(proc, timeout=20):
    """Terminate a server we started; kill it if it does not stop in `timeout` s."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


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
    env = scenarios.environment("DATABASE_URL", LABAPP_PGDATA=pgdata)
    for action in ("start", "stop"):
        subprocess.run([sys.executable, "-m", "flask", "--app", "labapp", "pgserver", action],
                       cwd=ROOT, env=env, check=True, capture_output=True, timeout=60)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        subprocess.run(["chown", "-R", "4242:4242", str(pgdata)], check=True)
        return "belongs to uid 4242"
    (pgdata / "log").chmod(0)
    return "may not write"


# -- other Pythons, and what a lab's processes import ---------------------------------

def interpreter(version):
    """A `python3.X` that runs here: the one on PATH, or pyenv's own copy (a
    pyenv shim runs only the versions pyenv has selected)."""
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    found = [shutil.which(f"python{version}")]
    found += sorted(glob.glob(f"{pyenv}/versions/{version}.*/bin/python{version}"), reverse=True)
    for path in filter(None, found):
        if subprocess.run([path, "-c", "pass"], capture_output=True).returncode == 0:
            return path
    return None


def lab_imports(python, role):
    """What one of a lab's processes imports, run by `python` (tests/lab_imports.py)."""
    run = subprocess.run([str(python), str(ROOT / "tests" / "lab_imports.py"), role], cwd=ROOT,
                         env=scenarios.environment(PYTHONDONTWRITEBYTECODE="1"),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


# -- a notebook run in a real kernel ---------------------------------------------

EXECUTE = textwrap.dedent('''
    import sys
    import nbformat
    from nbclient import NotebookClient
    from tools import notebook_kernel  # the sandbox's (PYTHONPATH), as its labapp is

    path, timeout = sys.argv[1], int(sys.argv[2])
    kernel = "python3"
    if notebook_kernel.available():  # `!flask` forked from a server with this environment
        notebook_kernel.serve()
        kernel = notebook_kernel.NAME
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name=kernel, allow_errors=True,
                   resources={"metadata": {"path": str(__import__("pathlib").Path(path).parent)}}).execute()
    nbformat.write(nb, path)
''')


def execute_notebook(path, env, cell_timeout=120, timeout=300):
    """Run the notebook at `path` in a kernel of the kit's venv (in its folder, with
    `env`: a sandbox's), errors and all, and write it back with its outputs. Its `!flask`
    commands are forked, as in nbval's kernels (tools/notebook_kernel.py)."""
    proc = subprocess.run([sys.executable, "-c", EXECUTE, str(path), str(cell_timeout)],
                          cwd=path.parent, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]


# -- a lab's chain under pytest-alembic -----------------------------------------------

@contextlib.contextmanager
def chain_app(models, url, tag):
    """An app whose models are `models` (a lab's models.py), bound to `url`.

    Every lab's models.py does `from labapp import db`, which is `labapp.crm.db`:
    import it while that is a fresh SQLAlchemy(), so its tables land in their own
    MetaData (not the kit's, nor another lab's)."""
    module_name = f"_chain_{tag}_models"
    original = labapp.crm.db
    labapp.crm.db = fresh = SQLAlchemy()
    try:
        spec = importlib.util.spec_from_file_location(module_name, models)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True}, models=module_name)
        with app.app_context():
            try:
                yield app
            finally:
                fresh.engine.dispose()
    finally:
        labapp.crm.db = original
        labapp.crm.migrate.db = original  # Migrate.init_app kept the fresh one
        sys.modules.pop(module_name, None)


def alembic_runner(stack, folder, url, test_name):
    """pytest-alembic's runner on the workspace `folder` (its migrations/ and
    models.py) against `url`; what it opens is closed with the ExitStack `stack`."""
    migrations = folder / "migrations"
    tag = re.sub(r"\W", "_", f"{folder.name}_{test_name}")
    stack.enter_context(chain_app(folder / "models.py", url, tag))
    config = Config(config_options={"file": str(migrations / "alembic.ini"),
                                    "script_location": str(migrations)})
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    stack.callback(engine.dispose)
    return stack.enter_context(runner(config=config, engine=engine))


# -- a room's learners ---------------------------------------------------------------

def learner_at(tmp_path, name, admin, chain, target):
    """A room's learner `name` (under `tmp_path`): their lab 01 just set up (target None), or
    its end state (the `chain` fixture) upgraded to `target`, on the server `admin` names."""
    spec, _ = labs.get("lab01")
    copy = lab.Lab(spec, notebooks=tmp_path / name / "notebooks", learner=learners.clean(name))
    if target:
        chain("lab01", copy.workspace)
    else:
        copy.reset()
    database.create_database(copy.url)
    if target:
        done = flask_in(copy.workspace, "db", "upgrade", target,
                        env={"LABAPP_DATABASE": copy.database, "DATABASE_URL": admin})
        assert done.returncode == 0, done.output
