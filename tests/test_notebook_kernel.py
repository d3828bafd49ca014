"""The labs' kernel under nbval (tools/notebook_kernel.py): its `!flask` is forked from a
process that has imported the app, and is the `flask` executable in all a cell can see:
its output, its exit code, its folder, its environment; a signal ends it."""
import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest
from jupyter_client.manager import start_new_kernel

from helpers import BIN
from tools import notebook_kernel

pytestmark = pytest.mark.skipif(not notebook_kernel.available(),
                                reason="no fork here, or LABAPP_TEST_REAL_FLASK=1")

APP = """import os, sys, time
import click
from flask import Flask

app = Flask(__name__)


@app.cli.command()
def where():
    click.echo(f"in {os.getcwd()} probe={os.environ.get('PROBE')} pid={os.getpid()}")
    click.echo(f"imported already: {'labapp.app' in sys.modules}")


@app.cli.command()
def fail():
    click.echo("failing", err=True)
    raise SystemExit(3)


@app.cli.command()
def hang():
    click.echo(f"pid={os.getpid()}")
    sys.stdout.flush()
    time.sleep(600)
"""


def run_cell(client, code):
    text = []

    def keep(message):
        if message["msg_type"] == "stream":
            text.append(message["content"]["text"])

    client.execute_interactive(code, timeout=120, output_hook=keep)
    return "".join(text)


@contextlib.contextmanager
def labs_kernel(folder, **env):
    """A kernel of the labs' spec in `folder` (app.py: APP), with `env` added to its environment."""
    notebook_kernel.serve()
    (folder / "app.py").write_text(APP)
    manager, client = start_new_kernel(kernel_name=notebook_kernel.NAME, cwd=str(folder),
                                       env={**os.environ, **env})
    try:
        # as a lab's setup cell does: the venv first on PATH
        run_cell(client, f"import os; os.environ['PATH'] = {str(BIN)!r} + os.pathsep + os.environ['PATH']")
        yield client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


@pytest.fixture
def kernel(tmp_path):
    with labs_kernel(tmp_path) as client:
        yield client


def test_the_labs_run_in_this_kernel(pytestconfig):
    assert pytestconfig.option.nbval_kernel_name == notebook_kernel.NAME


def test_a_cells_flask_is_forked_in_its_folder_with_its_environment(kernel, tmp_path):
    out = run_cell(kernel, "!PROBE=here flask where; echo exit $?")
    assert f"in {tmp_path} probe=here" in out, out
    assert "imported already: True" in out and "exit 0" in out, out


def test_told_so_the_kernel_runs_the_flask_executable(tmp_path):
    """As the slow checks' nested runs have it for each solved lab's first run."""
    with labs_kernel(tmp_path, **{notebook_kernel.REAL: "1"}) as client:
        out = run_cell(client, "!flask where; echo exit $?")
    assert f"in {tmp_path} " in out and "imported already: False" in out and "exit 0" in out, out


def test_a_cells_flask_prints_and_exits_as_the_executable_does(kernel):
    for args in ("fail", "--app labapp --help", "--app labapp dropdb --no-such-option"):
        forked = run_cell(kernel, f"!flask {args}; echo exit $?")
        real = run_cell(kernel, f"!'{BIN / 'flask'}' {args}; echo exit $?")  # a path may hold a space
        assert forked == real and "exit" in forked, args


def test_a_signal_to_the_client_ends_the_command(tmp_path):
    notebook_kernel.serve()
    (tmp_path / "app.py").write_text(APP)
    env = {**os.environ, "FLASK_APP": "app", notebook_kernel.SOCKET: notebook_kernel.address()}
    with subprocess.Popen([sys.executable, notebook_kernel.FORKED + "/flask", "hang"],
                          cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True) as client:
        child = int(client.stdout.readline().split("pid=")[1])
        client.send_signal(signal.SIGTERM)
        assert client.wait(timeout=30) != 0
    deadline = time.monotonic() + 30
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
