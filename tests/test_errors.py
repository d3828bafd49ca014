"""Every edge where a LabError can reach a person shows it the same way, through
LabError.show(): one line, `Error: ...`, exit status 1, no traceback; and with
LABAPP_DEBUG=1 the traceback instead. The edges: a `flask` command of the kit,
`flask trace` (which runs in any Flask app), the `python -m` entry points
(`make reset`, the hub's notebook copy) and a lab's kernel."""
import subprocess
import sys

import pytest

from helpers import ROOT, flask_in, run_flask

BLOCKED = "/proc/no-such-folder/notebooks"  # a folder nobody may make
# an app that is not the kit's, on SQLite: `flask trace` refuses it in one line
SQLITE_APP = ("from flask import Flask\nfrom flask_migrate import Migrate\n"
              "from flask_sqlalchemy import SQLAlchemy\n"
              "app = Flask(__name__)\napp.config['SQLALCHEMY_DATABASE_URI'] = 'sqlite://'\n"
              "db = SQLAlchemy(app)\nMigrate(app, db)\n")


def edge(name, tmp_path, debug):
    env = {"LABAPP_DEBUG": "1" if debug else None, "DATABASE_URL": None}
    if name == "flask command":
        return run_flask("createdb", env={**env, "DATABASE_URL": "postgresql://u@h:port/db"})
    if name == "flask trace, any app":
        (tmp_path / "app.py").write_text(SQLITE_APP)
        return flask_in(tmp_path, "trace", "upgrade", env=env)
    module, *args = {"make reset": ["labapp.runtime.lab", "lab99"],
                     "notebook copy": ["labapp.runtime.notebooks", "copy", BLOCKED]}[name]
    full = {k: v for k, v in {**__import__("os").environ, **env}.items() if v is not None}
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=full,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    proc.output = proc.stdout
    return proc


EDGES = {"flask command": "DATABASE_URL is not a database URL",
         "flask trace, any app": "the lock trace needs PostgreSQL",
         "make reset": "no lab called 'lab99'",
         "notebook copy": "could not copy the notebooks to"}


@pytest.mark.parametrize("name", EDGES)
def test_each_edge_shows_a_lab_error_in_one_line(name, tmp_path):
    proc = edge(name, tmp_path, debug=False)
    lines = [line for line in proc.output.splitlines() if line.strip()
             and not line.startswith("INFO  [alembic")]
    assert proc.returncode == 1 and len(lines) == 1, proc.output
    assert lines[0].startswith(f"Error: {EDGES[name]}"), proc.output


@pytest.mark.parametrize("name", EDGES)
def test_labapp_debug_shows_the_traceback_at_each_edge(name, tmp_path):
    proc = edge(name, tmp_path, debug=True)
    assert proc.returncode != 0 and "Traceback" in proc.output and "LabError" in proc.output, proc.output
