"""The pre-workshop check a learner runs at home (`make check`): does this laptop
run the labs? It proves, in order, what a lab needs:

1. the venv: this Python is one the kit supports, and what a lab imports imports;
2. the database server: the embedded PostgreSQL starts and answers (or the server
   DATABASE_URL names answers);
3. JupyterLab: it starts as `make lab` starts it, and answers its API and /lab;
4. a lab: lab 01's first code cells (its setup cell, `!cat models.py`, `!flask
   createdb`, `%sql`) run in a kernel of the venv, with no error.

    .venv/bin/python tools/check.py

It prints ONE line to paste to the instructor, `labapp check: ok (...)` or
`labapp check: FAILED at <step>: <the cause, one line>`, and exits 0 or 1.
Nothing of the learner's is touched: lab 01 runs in a scratch copy of the kit
under a database name of its own (`precheck__lab01`, or `<learner>_check__lab01`
on a hub), on the same server the labs use; JupyterLab runs on a free port with
a scratch workspace folder. What it starts it stops, the embedded server too
if it was not running before.
"""
import contextlib
import logging
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: tools/ and labapp/ of this clone

BIN = Path(sys.executable).parent
LAB = "01-First-Migration.ipynb"
FIRST_CELLS = 4  # lab 01's setup, `!cat models.py`, `!flask createdb`, `%sql {lab01.url}`
JUPYTER_TIMEOUT = 90  # seconds for JupyterLab to answer (a slow laptop's first start)
CELL_TIMEOUT = 180


class Failed(Exception):
    """A step failed: str() is the one-line cause."""


def one_line(text, limit=300):
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return (lines[-1] if lines else "no reason given")[:limit]


# -- 1. the venv ----------------------------------------------------------------------

def check_venv():
    from tools import bootstrap

    if sys.version_info[:2] not in bootstrap.SUPPORTED or sys.version_info[:3] < bootstrap.OLDEST:
        raise Failed(f"this venv's Python is {platform.python_version()}; the kit needs "
                     f"{bootstrap.SUPPORTED_TEXT}: `make clean`, then `make lab PYTHON=python3.13`")
    missing = []
    for module in ("flask", "flask_migrate", "alembic", "sqlalchemy", "psycopg2", "jupyterlab",
                   "ipykernel", "nbclient", "sql", "labapp"):
        try:
            __import__(module)
        except Exception as exc:  # an import that breaks is as bad as one that is missing
            missing.append(f"{module} ({one_line(exc, 80)})")
    if missing:
        raise Failed(f"cannot import {', '.join(missing)}: run `make clean`, then `make lab`")
    import labapp

    where = Path(labapp.__file__).resolve().parent
    if where != ROOT / "labapp":
        raise Failed(f"the venv's labapp is {where}, not this clone's: `make clean`, then `make lab`")
    return f"Python {platform.python_version()}"


# -- 2. the database server ----------------------------------------------------------------

STARTED = []  # the embedded server, when this check started it (stopped at the end)


def check_server():
    import sqlalchemy as sa

    from labapp import settings
    from labapp.errors import LabError
    from labapp.server import config, pgserver

    try:
        if not settings.database_url() and not pgserver.is_running():
            STARTED.append(pgserver.data_dir())
        # the embedded server's own `postgres` database; DATABASE_URL's as it names it
        url = config.database_url(None if settings.database_url() else "postgres")
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool,
                                  connect_args={"connect_timeout": 10})
        with engine.connect() as connection:
            version = connection.execute(sa.text("SHOW server_version")).scalar()
    except LabError as exc:
        raise Failed(str(exc)) from None
    except Exception as exc:
        # the driver's message whole, on one line ("connection ... failed: Connection refused
        # Is the server running ...?")
        message = " ".join(str(getattr(exc, "orig", None) or exc).split())[:300]
        raise Failed(f"{type(exc).__name__}: {message}") from None
    kind = "the DATABASE_URL server" if settings.database_url() else "embedded"
    return f"PostgreSQL {version.split()[0]} ({kind})"


# -- 3. JupyterLab ---------------------------------------------------------------------

def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def lab_server(scratch):
    """JupyterLab started as `make lab` starts it (its config, 127.0.0.1), on a free
    port with a token and a scratch workspace folder: yields (base URL, token)."""
    port, token = free_port(), secrets.token_hex(16)
    command = [str(BIN / "jupyter"), "lab", "--no-browser", f"--port={port}",
               "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1",
               f"--IdentityProvider.token={token}", f"--notebook-dir={ROOT / 'notebooks'}",
               f"--config={ROOT / 'tools' / 'jupyter_server_config.py'}",
               f"--LabApp.workspaces_dir={scratch / 'workspaces'}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log = open(scratch / "jupyterlab.log", "w")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                              start_new_session=True)
    try:
        yield f"http://127.0.0.1:{port}", token, server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def get(url, token, timeout=5):
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, response.read().decode("utf-8", "replace")


def check_jupyterlab(scratch):
    import jupyterlab

    with lab_server(scratch) as (base, token, server):
        deadline = time.monotonic() + JUPYTER_TIMEOUT
        while True:
            if server.poll() is not None:
                raise Failed(f"JupyterLab exited at start ({server.returncode}): "
                             f"{one_line((scratch / 'jupyterlab.log').read_text())}")
            try:
                status, _ = get(f"{base}/api/status", token)
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise Failed(f"JupyterLab did not answer within {JUPYTER_TIMEOUT} s "
                             f"(its log: {one_line((scratch / 'jupyterlab.log').read_text())})")
            time.sleep(0.3)
        try:
            status, page = get(f"{base}/lab", token, timeout=30)
        except OSError as exc:
            raise Failed(f"JupyterLab's /lab page failed: {one_line(exc)}") from None
        if status != 200 or "jupyter-config-data" not in page:
            raise Failed(f"JupyterLab's /lab page is not JupyterLab (HTTP {status})")
    return f"JupyterLab {jupyterlab.__version__}"


# -- 4. lab 01's first cells ---------------------------------------------------------------

def lab_environment(top):
    """The scratch copy's environment: the same server as the labs, a name of its own."""
    from labapp import settings
    from labapp.server import learners, pgserver
    from tools import scenarios

    env = scenarios.make_sandbox(top)
    learner = learners.current()
    env["LABAPP_LEARNER"] = f"{learner}_check" if learner else "precheck"
    if settings.database_url():
        env["DATABASE_URL"] = settings.database_url()
        env.pop("LABAPP_PGDATA")
    else:
        env["LABAPP_PGDATA"] = str(pgserver.data_dir())
    return env


def check_lab(scratch):
    import nbformat

    top = scratch / "kit"
    top.mkdir()
    env = lab_environment(top)
    path = top / "notebooks" / LAB
    nb = nbformat.read(path, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"][:FIRST_CELLS]
    nb.cells = code
    for cell in code:
        cell.outputs = []
    path.with_name("check.ipynb").write_text(nbformat.writes(nb))
    runner = ("import sys, nbformat\n"
              "from nbclient import NotebookClient\n"
              "path = sys.argv[1]\n"
              "nb = nbformat.read(path, as_version=4)\n"
              "NotebookClient(nb, timeout=int(sys.argv[2]), kernel_name='python3', allow_errors=True,\n"
              "               resources={'metadata': {'path': sys.argv[3]}}).execute()\n"
              "nbformat.write(nb, path)\n")
    env["JPY_SESSION_NAME"] = str(path)
    try:
        run = subprocess.run([sys.executable, "-c", runner, str(path.with_name("check.ipynb")),
                              str(CELL_TIMEOUT), str(path.parent)], cwd=path.parent, env=env,
                             capture_output=True, text=True, timeout=CELL_TIMEOUT * FIRST_CELLS)
    except subprocess.TimeoutExpired:
        raise Failed(f"lab 01's first cells did not finish in {CELL_TIMEOUT * FIRST_CELLS} s") from None
    if run.returncode != 0:
        raise Failed(f"lab 01's kernel could not run: {one_line(run.stderr)}")
    ran = nbformat.read(path.with_name("check.ipynb"), as_version=4)
    for cell in ran.cells:
        source = cell.source.splitlines()[-1].strip() if cell.source.strip() else ""
        for output in cell.outputs:
            if output.output_type == "error":
                raise Failed(f"lab 01's cell `{source}`: {output.ename}: {one_line(output.evalue)}")
            text = output.get("text", "") or output.get("data", {}).get("text/plain", "")
            bad = [line for line in text.splitlines()
                   if re.match(r"\s*(Error|ERROR|Traceback|\S+Error:)", line)]
            if bad:
                raise Failed(f"lab 01's cell `{source}`: {one_line(bad[0])}")
        if cell.execution_count is None:
            raise Failed(f"lab 01's cell `{source}` did not run")
    return f"lab 01's first {len(ran.cells)} cells ran"


# -- the one line ------------------------------------------------------------------------

STEPS = (("the venv", check_venv), ("the database server", check_server),
         ("JupyterLab", check_jupyterlab), ("lab 01", check_lab))


def main():
    warnings.simplefilter("ignore")  # one line, whatever a package has to say
    logging.disable(logging.CRITICAL)
    start = time.monotonic()
    found = []
    scratch = Path(tempfile.mkdtemp(prefix="labapp-check-"))
    scratch.chmod(0o755)  # the scratch kit holds no server data, but its parents must be open
    step = STEPS[0][0]
    try:
        for name, function in STEPS:
            step = name  # what the one line names if this step fails
            found.append(function(scratch) if function in (check_jupyterlab, check_lab) else function())
    except Failed as exc:
        print(f"labapp check: FAILED at {step}: {exc}")
        return 1
    except Exception as exc:  # a check that breaks says so in one line too
        print(f"labapp check: FAILED at {step}: {type(exc).__name__}: {one_line(exc)}")
        return 1
    finally:
        if STARTED:
            with contextlib.suppress(Exception):
                from labapp.server import pgserver
                pgserver.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    system = f"{platform.system()} {platform.machine()}"
    print(f"labapp check: ok ({', '.join(found)}; {system}; {time.monotonic() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
