"""The kit on this machine's other Pythons (slow: CI=true runs it).

The suite itself runs on .venv's Python; here each other Python the kit
supports (3.12, 3.13; tools/bootstrap.py SUPPORTED) gets a venv of its own,
.venv-3.12, built by `make venv PYTHON=python3.12 VENV=.venv-3.12` (uv: a few
seconds once its cache is warm), and runs a smoke subset there: the app and
CLI tests, and lab 01's learner copy and solution under strict nbval, after
checking that the venv came with what a lab imports compiled
(tests/test_bootstrap.py). It runs
in a sandbox (tools/scenarios.py: the kit copied, an embedded server of its
own), so it shares no database or workspace with the suite around it. A
Python this machine does not have is skipped, and the skip line says so.

A slow test rather than a Makefile step: the README's test command stays one
pytest run (CI's .ci/run calls only that), the sandbox is the suite's own
fixture, and xdist runs it beside the other tests.
"""
import os
import re
import shutil
import subprocess

import pytest

from helpers import ROOT, interpreter, lab_imports
from tools import scenarios
from tools.bootstrap import LATER

pytestmark = pytest.mark.slow

SMOKE = ["tests/test_factory.py", "tests/test_cli.py",
         "notebooks/01-First-Migration.ipynb", "notebooks/solutions/01-First-Migration.ipynb"]
OTHERS = ["3.12", "3.13"]


@pytest.mark.parametrize("version", OTHERS)
def test_smoke_subset_on_another_python(version):
    python = interpreter(version)
    if python is None:
        pytest.skip(f"Python {version} is not on this machine: its smoke subset is not run")
    venv = ROOT / f".venv-{version}"
    # as a learner types it (`make lab PYTHON=python3.12`), even where python3.12 is a pyenv
    # shim that runs only when selected (the Makefile asks pyenv for it)
    command = f"python{version}" if shutil.which(f"python{version}") else python
    built = subprocess.run(["make", "venv", f"PYTHON={command}", f"VENV={venv.name}"], cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
    assert built.returncode == 0, built.stdout[-3000:]
    for role in ("server", "kernel", "cli"):  # what bootstrap compiled, before the smoke runs
        found = lab_imports(venv / "bin" / "python", role)
        assert (sorted(set(found["imported"]) & set(LATER)), found["uncompiled"]) == ([], []), role
    path = f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"
    # (test_factory checks the name of the server's folder)
    with scenarios.sandbox(f"py{version}-", pgdata="pgdata", PATH=path) as (top, env):
        run = subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import sys; print(sys.version.split()[0])"],
            cwd=top, env=env, capture_output=True, text=True, timeout=60)
        assert run.stdout.startswith(f"{version}."), run.stdout + run.stderr
        run = subprocess.run([str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:xdist",
                              *SMOKE], cwd=top, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, timeout=1200)
        assert run.returncode == 0, run.stdout[-6000:]
        last = run.stdout.strip().splitlines()[-1]
        assert re.match(r"\d+ passed in ", last), last  # nothing skipped, nothing failed
