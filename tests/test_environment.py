"""environment.yml (conda, Binder, JupyterHub) installs what `make lab` installs, on the
Pythons the README names, and `make lab` refuses any other in one line."""
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from helpers import ROOT, interpreter
from tools import scenarios


def pins(lines):
    """{normalized name: version} of `name==version` lines."""
    found = {}
    for line in lines:
        match = re.match(r"\s*([A-Za-z0-9._-]+)\s*==\s*([^\s;#]+)", line)
        if match:
            found[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return found


PYPROJECT = (ROOT / "pyproject.toml").read_text()


def pyproject_pins():
    """Every quoted `"name==version"` in pyproject.toml: dependencies and extras
    (read as text)."""
    return pins(re.findall(r'^\s*"([^"]+==[^"]+)"', PYPROJECT, flags=re.M))


def test_every_pyproject_pin_is_in_the_lock_file_at_the_same_version():
    locked = pins((ROOT / "requirements.lock").read_text().splitlines())
    wrong = {n: (v, locked.get(n)) for n, v in pyproject_pins().items() if locked.get(n) != v}
    assert wrong == {}, "pyproject pin vs requirements.lock: run `make lock`"


def test_environment_yml_is_conda_forge_python_311_and_the_same_pins():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"][0] == "conda-forge"
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    if "-r requirements.lock" in pip:
        return  # the lock file itself, checked above against pyproject.toml
    listed = pins(pip)
    missing = {n: v for n, v in pyproject_pins().items() if listed.get(n) != v}
    assert missing == {}, "environment.yml's pip pins differ from pyproject.toml's"


def test_the_supported_pythons_agree():
    """pyproject.toml's requires-python, tools/bootstrap.py (which refuses any other
    Python in one line) and the README name the same versions."""
    from tools import bootstrap

    versions = [f"{major}.{minor}" for major, minor in bootstrap.SUPPORTED]
    oldest = ".".join(map(str, bootstrap.OLDEST))
    assert bootstrap.OLDEST[:2] == bootstrap.SUPPORTED[0]
    (major, last) = bootstrap.SUPPORTED[-1]
    assert f'requires-python = ">={oldest},<{major}.{last + 1}"' in PYPROJECT
    readme = (ROOT / "README.md").read_text()
    assert f"Python {', '.join(versions[:-1])} or {versions[-1]} ({oldest} or later)" in readme
    assert bootstrap.SUPPORTED_TEXT == f"{oldest}\u2013{versions[-1]}"


def test_an_older_python_is_refused_in_one_line_that_names_one_to_use(tmp_path):
    """`make lab PYTHON=python3.10` (as a learner types it) prints one line of its own
    beside make's, names a `make lab PYTHON=...` that runs a supported Python here, and
    leaves no venv behind."""
    from tools import bootstrap

    version = next((v for v in ("3.10", "3.9") if interpreter(v)), None)
    if version is None:
        pytest.skip("no Python 3.9 or 3.10 on this machine to be refused")
    command = f"python{version}" if shutil.which(f"python{version}") else interpreter(version)
    venv = tmp_path / "venv"
    # a learner's own make, not a sub-make of `make test PYTHON=...`'s, on their own PATH
    env = scenarios.environment("MAKEFLAGS", "MFLAGS", "MAKELEVEL", PATH=os.environ["PATH"])
    run = subprocess.run(["make", "-s", "venv", f"PYTHON={command}", f"VENV={venv}"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and run.stdout == ""
    ours = [line for line in run.stderr.splitlines() if not line.startswith("make: ***")]
    assert len(ours) == 1, run.stderr
    match = re.fullmatch(rf"labapp needs Python {re.escape(bootstrap.SUPPORTED_TEXT)}; found {version} "
                         r"\(\S+\): (run `make lab PYTHON=(\S+)`|install one from python.org .*)", ours[0])
    assert match, ours[0]
    if match.group(2):  # the one it names runs a supported Python (not Debian 12's 3.11.2)
        named = subprocess.run([match.group(2), "-c", "import sys; print(*sys.version_info[:3])"],
                               capture_output=True, text=True)
        found = tuple(map(int, named.stdout.split()))
        assert found[:2] in bootstrap.SUPPORTED and found >= bootstrap.OLDEST, found
    else:  # none here: under pyenv with 3.10 selected (as the Makefile selects it), a
        # python3.11 shim runs the system's, Debian 12's 3.11.2, which the lock refuses
        selected = dict(env)
        if shutil.which("pyenv"):
            whence = subprocess.run(["pyenv", "whence", command], capture_output=True, text=True)
            selected["PYENV_VERSION"] = whence.stdout.split()[-1]
        check = ("import sys; sys.exit(sys.version_info[:2] not in %r or sys.version_info[:3] < %r)"
                 % (bootstrap.SUPPORTED, bootstrap.OLDEST))
        for major, minor in bootstrap.SUPPORTED:
            if shutil.which(f"python{major}.{minor}"):
                ran = subprocess.run([f"python{major}.{minor}", "-c", check], env=selected,
                                     capture_output=True)
                assert ran.returncode != 0, f"python{major}.{minor} runs a supported Python"
    assert not venv.exists()


def test_native_windows_is_refused_in_one_line_that_points_to_wsl_and_the_zero_install_path(tmp_path):
    """The bootstrap as a Windows learner runs it (`python tools/bootstrap.py`, no make), with
    os.name as Windows reports it: one line, non-zero, no venv, and the README section it names
    exists and says the same."""
    from tools import bootstrap

    venv = tmp_path / "venv"
    fake = ("import argparse, glob, os, re, runpy, shutil, subprocess, sys, time; os.name = 'nt'; "
            "sys.argv = ['tools/bootstrap.py', sys.argv[1]]; "
            "runpy.run_path('tools/bootstrap.py', run_name='__main__')")
    run = subprocess.run([sys.executable, "-c", fake, str(venv)], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert (run.returncode, run.stdout, run.stderr) == (1, "", bootstrap.WINDOWS + "\n")
    assert not venv.exists()
    readme = (ROOT / "README.md").read_text()
    assert "\n### Windows\n" in readme and "WSL" in bootstrap.WINDOWS
    section = readme.split("\n### Windows\n", 1)[1].split("\n## ", 1)[0]
    assert "WSL" in section and "\n### No install\n" in section
    assert "Codespaces" in section and "Binder" in section
