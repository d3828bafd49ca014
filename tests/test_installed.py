"""Installed once, used by many: the kit as a package in a hub image.

Each learner gets their own notebooks (`python -m labapp.runtime.notebooks copy`),
their workspaces beside them, and the embedded server's data in their own
data folder, never in the shared install; as root, the learner's home keeps
its permissions (the wheel would make every folder above the data
world-readable).
"""
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from helpers import BIN, ROOT
from labapp.runtime import notebooks
from labapp.server import pgserver
from tools import sanitize, scenarios

as_root = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                             reason="the wheel changes permissions only as root")


def clean_env(**changes):
    """A learner's environment: none of the kit's settings, nor XDG_DATA_HOME, but `changes`."""
    return scenarios.environment(scenarios.KIT_SETTINGS, scenarios.PYTEST_RUN, "XDG_DATA_HOME", **changes)


def test_an_installed_kit_keeps_its_data_in_the_learners_data_folder(open_tmp, monkeypatch):
    monkeypatch.setattr(pgserver, "ROOT", open_tmp / "site-packages")  # no pyproject.toml: installed
    monkeypatch.setenv("HOME", str(open_tmp / "alice"))
    for name in ("LABAPP_PGDATA", "XDG_DATA_HOME", "LABAPP_LEARNER", "JUPYTERHUB_USER"):
        monkeypatch.delenv(name, raising=False)
    (open_tmp / "alice").mkdir(mode=0o755)
    assert pgserver.data_dir() == open_tmp / "alice" / ".local" / "share" / "labapp" / "pgdata"


def test_a_named_learner_in_a_clone_keeps_it_there_too(open_tmp, monkeypatch):
    monkeypatch.setenv("HOME", str(open_tmp / "bob"))
    monkeypatch.setenv("JUPYTERHUB_USER", "bob")
    monkeypatch.delenv("LABAPP_PGDATA", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    (open_tmp / "bob").mkdir(mode=0o755)
    assert pgserver.data_dir() == open_tmp / "bob" / ".local" / "share" / "labapp" / "pgdata"


@as_root
def test_as_root_a_private_home_keeps_its_mode(open_tmp):
    """A 0700 home: the server's data goes where the wheel's chmod changes nothing,
    and the server runs; the home and every folder above it are as they were."""
    home = open_tmp / "carol"
    home.mkdir(mode=0o700)
    (home / "notes").mkdir(mode=0o700)
    before = {p: p.stat().st_mode for p in (home, home / "notes", *home.parents)}
    env = clean_env(HOME=str(home), LABAPP_LEARNER="carol")
    code = ("from labapp.server import pgserver; import psycopg2; "
            "psycopg2.connect(pgserver.server_uri(), connect_timeout=3).close(); "
            "print(pgserver.data_dir())")
    try:
        started = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=120)
        assert started.returncode == 0, started.stderr
        pgdata = Path(started.stdout.strip())
        assert home not in pgdata.parents and pgdata.parent == Path(tempfile.gettempdir())
    finally:
        subprocess.run([sys.executable, "-c", "from labapp.server import pgserver; pgserver.stop()"],
                       cwd=ROOT, env=env, capture_output=True, timeout=60)
    assert {p: p.stat().st_mode for p in before} == before
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    shutil.rmtree(pgdata, ignore_errors=True)


def test_copy_gives_a_learner_the_notebooks_and_keeps_their_work(open_tmp):
    dest = open_tmp / "labs"
    copied = notebooks.copy(dest)
    assert (dest / "01-First-Migration.ipynb").exists() and (dest / "solutions").is_dir()
    assert {p.relative_to(dest).as_posix() for p in copied} == {
        p.relative_to(ROOT / "notebooks").as_posix() for pattern in notebooks.PATTERNS
        for p in (ROOT / "notebooks").glob(pattern)}
    (dest / "01-First-Migration.ipynb").write_text("my work")
    assert notebooks.copy(dest) == []
    assert (dest / "01-First-Migration.ipynb").read_text() == "my work"


@pytest.mark.slow
def test_a_wheel_installed_kit_runs_a_lab_from_a_learners_copy(open_tmp):
    """Build the wheel, install it (not editable) into a venv that borrows the
    pinned dependencies, copy the notebooks into a learner's home and run lab 00
    there with strict nbval: nothing lands in the install."""
    wheel = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                            str(open_tmp / "dist"), str(ROOT)], capture_output=True, text=True,
                           timeout=300)
    assert wheel.returncode == 0, wheel.stderr
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    venv = open_tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = next(venv.glob("lib/python*/site-packages"))
    pinned = next(Path(sys.prefix).glob("lib/python*/site-packages"))
    (site / "pinned.pth").write_text(f"{pinned}\n")  # the kit's pins, not its editable install
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                              "install", "-q", "--no-deps", *map(str, (open_tmp / "dist").glob("*.whl"))],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr

    home = open_tmp / "dana"
    home.mkdir(mode=0o755)
    env = clean_env(HOME=str(home), PATH=f"{venv / 'bin'}{os.pathsep}{BIN}{os.pathsep}{os.environ['PATH']}")
    env["PYTHONPATH"] = ""
    python = str(venv / "bin" / "python")
    where = subprocess.run([python, "-c", "import labapp; print(labapp.__file__)"], cwd=home,
                           env=env, capture_output=True, text=True, timeout=60)
    assert where.stdout.startswith(str(site)), where.stdout + where.stderr
    copied = subprocess.run([python, "-m", "labapp.runtime.notebooks", "copy", str(home / "labs")],
                            cwd=home, env=env, capture_output=True, text=True, timeout=60)
    assert copied.returncode == 0 and "notebooks copied" in copied.stdout, copied.stderr
    (home / "labs" / "pytest.ini").write_text("[pytest]\n")
    try:
        run = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval",
                              "--nbval-current-env", "--nbval-sanitize-with",
                              str(sanitize.write(home / "sanitize.cfg", home / "labs")),
                              "00-Welcome.ipynb"],
                             cwd=home / "labs", env=env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stdout[-3000:]
        assert (home / "labs" / "workspaces" / "lab00" / "app.py").exists()
        assert (home / ".local" / "share" / "labapp" / "pgdata" / "PG_VERSION").exists()
        assert not list(site.glob(".pgdata")) and not list(venv.glob("share/labapp/notebooks/workspaces"))
    finally:
        subprocess.run([python, "-c", "from labapp.server import pgserver; pgserver.stop()"], cwd=home,
                       env=env, capture_output=True, timeout=60)
