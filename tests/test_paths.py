"""Any clone path: a folder name with a space (`My Projects/kit`, where many
learners clone) and a long one.

The sanitize rules for machine paths are this clone's exact paths, escaped
(tools/sanitize.py): checked here on a path with a space, and by running the
suite's path-sensitive parts from such a clone (slow: CI=true runs it): a
copy of the kit's files under a long path with a space, its own .venv built
there by tools/bootstrap.py (console scripts whose shebang has a space), then
the `make lab` recipe test, the reset tests and labs 01 and 03 (learner copy
and solution, strict nbval: their `flask db init` / `migrate` lines and lab
03's warning print the clone's paths).
"""
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

from helpers import ROOT
from notebook_outputs import sanitize
from tools import sanitize as sanitize_cfg
from tools import scenarios

SPACED = Path("/home/ana/My Projects/kit/notebooks")


def test_a_workspace_path_with_a_space_is_sanitized_whole():
    printed = f"Creating directory {SPACED}/workspaces/lab01/migrations ...  done"
    assert sanitize(printed, SPACED) == "Creating directory workspaces/lab01/migrations ...  done"


def test_only_the_clones_own_path_is_sanitized():
    elsewhere = "Generating /srv/other/notebooks/workspaces/lab01/models.py"
    assert sanitize(elsewhere, SPACED) == elsewhere


def test_the_venvs_warning_location_is_sanitized_whole():
    where = sysconfig.get_paths()["purelib"]
    printed = f"{where}/alembic/autogenerate/render.py:488: UserWarning: unnamed constraint"
    assert sanitize(printed) == "site-packages/alembic/autogenerate/render.py:488: UserWarning: unnamed constraint"


def test_nbval_gets_the_filled_in_rules(request):
    """The kit's conftest.py hands nbval tests/sanitize.cfg with this clone's paths."""
    given = Path(request.config.option.nbval_sanitize_with)
    assert given != sanitize_cfg.CFG
    text = given.read_text()
    assert re.escape(str(sanitize_cfg.NOTEBOOKS)) in text and "{notebooks}" not in text


# -- the path-sensitive parts, from a clone at a long path with a space -------------

PATH_SENSITIVE = ["tests/test_security.py", "tests/test_reset.py", "tests/test_paths.py",
                  "notebooks/01-First-Migration.ipynb", "notebooks/solutions/01-First-Migration.ipynb",
                  "notebooks/03-Production-Branch-Replay.ipynb",
                  "notebooks/solutions/03-Production-Branch-Replay.ipynb"]


def copy_of_the_kit(dest):
    """The kit's files as a clone of this working tree would have them (a git
    repository too: the labs' git cells must not reach it)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    subprocess.run(["git", "init", "-q", str(dest)], check=True)


@pytest.mark.slow
def test_path_sensitive_parts_pass_from_a_long_path_with_a_space():
    base = Path(tempfile.mkdtemp(prefix="lpath-", dir="/tmp"))
    long_name = "a-folder-name-long-enough-to-matter-for-shebangs-and-the-unix-sockets-of-postgres"
    kit = base / "My Projects" / long_name / "kit"
    assert " " in str(kit) and len(str(kit / ".venv" / "bin" / "python")) > 127
    copy_of_the_kit(kit)
    uv = ROOT / ".venv-bootstrap" / "bin"  # uv as this clone got it, not installed again
    env = scenarios.environment(scenarios.KIT_SETTINGS, scenarios.PYTEST_RUN, "PYTHONPATH", "VIRTUAL_ENV",
                                PATH=os.pathsep.join([str(kit / ".venv" / "bin"), str(uv), os.environ["PATH"]]))
    python = kit / ".venv" / "bin" / "python"
    try:
        built = subprocess.run([sys.executable, "tools/bootstrap.py", ".venv"], cwd=kit, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               timeout=900)
        assert built.returncode == 0, built.stdout[-3000:]
        run = subprocess.run([str(python), "-m", "pytest", "-q", "-rs", "-p", "no:xdist", "-m", "not slow",
                              *PATH_SENSITIVE], cwd=kit, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, timeout=1800)
        assert run.returncode == 0, run.stdout[-6000:]
        last = run.stdout.strip().splitlines()[-1]
        assert re.match(r"\d+ passed(, \d+ deselected)? in ", last), run.stdout[-3000:]  # no skip
    finally:
        if python.exists():  # the embedded server this clone started (in a space-free place)
            subprocess.run([str(python), "-c", "from labapp.server import pgserver; pgserver.stop()"],
                           cwd=kit, env=env, capture_output=True, timeout=120)
            pgdata = subprocess.run([str(python), "-c", "from labapp.server import pgserver; "
                                     "print(pgserver.data_dir())"], cwd=kit, env=env,
                                    capture_output=True, text=True, timeout=60).stdout.strip()
            if pgdata.startswith(tempfile.gettempdir()):
                shutil.rmtree(pgdata, ignore_errors=True)
        shutil.rmtree(base, ignore_errors=True)
