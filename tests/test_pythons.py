"""The kit on every Python it supports (slow: CI=true runs it).

First, uv's resolver proves that requirements.lock installs, from wheels only
and with nothing left unpinned, on each supported Python (tools/bootstrap.py
SUPPORTED, 3.11 from 3.11.5) on Linux (x86_64, aarch64: WSL, Codespaces,
Binder) and macOS arm64, including the versions this machine lacks (uv
resolves for a version and platform it does not run on; it asks PyPI).
Native Windows is refused by the bootstrap (README "Windows"), so it is not
resolved here.

The suite itself runs on .venv's Python; here each other Python the kit
supports (3.12 to 3.15) that this machine has gets a venv of its own,
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
from packaging.markers import Marker

from helpers import ROOT, interpreter, lab_imports
from tools import scenarios
from tools.bootstrap import LATER, OLDEST, SUPPORTED, find_uv

pytestmark = pytest.mark.slow

SMOKE = ["tests/test_factory.py", "tests/test_cli.py",
         "notebooks/01-First-Migration.ipynb", "notebooks/solutions/01-First-Migration.ipynb"]
OTHERS = [f"{major}.{minor}" for major, minor in SUPPORTED[1:]]
# uv's target triple: the markers a requirement line is judged by there
PLATFORMS = {"x86_64-unknown-linux-gnu": {"sys_platform": "linux", "platform_machine": "x86_64"},
             "aarch64-unknown-linux-gnu": {"sys_platform": "linux", "platform_machine": "aarch64"},
             "aarch64-apple-darwin": {"sys_platform": "darwin", "platform_machine": "arm64"}}


def normalized(line):
    """`Name==1.0 ; marker` -> `name==1.0` (PEP 503 name)."""
    name, version = line.split(";")[0].strip().split("==")
    return f"{re.sub(r'[-_.]+', '-', name).lower()}=={version}"


def locked_for(version, markers):
    """The lock's pins that apply on that Python and platform (its marker lines judged)."""
    environment = dict(markers, python_version=version, python_full_version=f"{version}.0")
    lines = [line for line in (ROOT / "requirements.lock").read_text().splitlines() if line.strip()]
    return {normalized(line) for line in lines
            if ";" not in line or Marker(line.split(";", 1)[1]).evaluate(environment)}


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("version", [f"{major}.{minor}" for major, minor in SUPPORTED])
def test_the_lock_resolves_from_wheels_alone(version, platform):
    """Every pin has a wheel there, and the resolver adds nothing the lock does not pin
    (a platform-only dependency such as macOS's appnope is in the lock, with its marker)."""
    uv, how = find_uv()
    assert uv, how
    target = ".".join(map(str, OLDEST)) if (3, 11) == tuple(map(int, version.split("."))) else version
    run = subprocess.run([uv, "pip", "compile", str(ROOT / "requirements.lock"), "--python-version",
                          target, "--python-platform", platform, "--only-binary", ":all:",
                          "--no-header", "--no-annotate", "--quiet"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    resolved = {normalized(line) for line in run.stdout.splitlines() if "==" in line}
    expected = locked_for(version, PLATFORMS[platform])
    assert (sorted(resolved - expected), sorted(expected - resolved)) == ([], [])


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
