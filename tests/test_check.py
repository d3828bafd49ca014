"""`make check`, the learner's pre-workshop check (tools/check.py), prints ONE line and
exits non-zero when a lab could not run: here, an embedded server that cannot start (a
data folder PostgreSQL cannot use). The whole check passing on a working laptop is the
slow test (a JupyterLab and a kernel: ~30-50 s here), on a server of its own."""
import re
import subprocess

import pytest

from helpers import ROOT
from tools import scenarios

# a learner's own make, on their own PATH, with nothing of the suite's run around it
CLEAN = (scenarios.KIT_SETTINGS, scenarios.PYTEST_RUN, "MAKEFLAGS", "MFLAGS", "MAKELEVEL")


def make_check(env, timeout=300):
    return subprocess.run(["make", "-s", "check"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_a_server_that_cannot_start_fails_the_check_in_one_true_line(open_tmp):
    pgdata = open_tmp / "pg"
    pgdata.mkdir()
    (pgdata / "PG_VERSION").write_text("9\n")  # says "initialized", holds nothing PostgreSQL needs
    run = make_check(scenarios.environment(*CLEAN, LABAPP_PGDATA=pgdata))
    assert run.returncode != 0
    lines = run.stdout.splitlines()
    assert len(lines) == 1, run.stdout + run.stderr
    assert lines[0].startswith(f"labapp check: FAILED at the database server: the embedded PostgreSQL "
                               f"at {pgdata} could not start: "), lines[0]
    # the server's own cause: no control file, or no configuration file (whichever it reads first)
    assert re.search(r'"\S+/(global/pg_control|postgresql\.conf)".*: No such file or directory', lines[0])
    assert not (pgdata / "postmaster.pid").exists()
    # make's own closing line is all the rest
    assert [line for line in run.stderr.splitlines() if not line.startswith("make: ***")] == []


@pytest.mark.slow
def test_a_working_laptop_passes_in_one_line_and_leaves_nothing_running(open_tmp):
    pgdata = open_tmp / "pg"
    run = make_check(scenarios.environment(*CLEAN, LABAPP_PGDATA=pgdata))
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("\n") == 1 and run.stderr == ""
    assert run.stdout.startswith("labapp check: ok (Python "), run.stdout
    assert "PostgreSQL 18" in run.stdout and "lab 01's first 4 cells ran" in run.stdout
    assert not (pgdata / "postmaster.pid").exists()  # started by the check, stopped by it
    # the lab ran in a scratch copy: this clone's lab 01 was not reset
    assert not (ROOT / "notebooks" / "workspaces" / "precheck").exists()
