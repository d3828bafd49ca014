"""Every lab runs alone, twice in a row, in any order, in parallel, and after
a kernel was killed half-way through it (slow: run under CI, `-m slow`).

Strict nbval of each lab once is the normal suite's job (notebooks/). Here,
to keep the time down, ONE nested pytest run covers the other orders:
`pytest -n 2 --dist loadgroup` runs every notebook (learner copies and
solutions) in REVERSE order, two labs at a time on two kernels:

1. each learner copy (and lab 00, the only copy) is first started in a
   kernel, run half-way and killed with SIGKILL (a stale kernel pid in the
   server's .handle_pids.json, a database and workspace left mid-lab), then
   run once under nbval, right after;
2. each solution copy (or a lab's only copy) runs TWICE in a row (a copy of
   the file under another name: pytest would drop a duplicate path);
3. the workspaces the solution notebooks leave are compared with the
   migration chains committed under tests/chains/.

Each solved lab's first run has the `flask` executable in its `!flask` cells; the
other runs and the half-runs, the forked one of make test's kernels
(tools/notebook_kernel.py): every stored output is compared with what the
executable prints, once. The sandbox's notebooks/conftest.py (NESTED_CONFTEST)
does the half-runs and picks each run's `flask`.

The nested run works in a sandbox: a copy of labapp/ and notebooks/ under a
temporary folder (imported first through PYTHONPATH) and an embedded server
of its own (LABAPP_PGDATA), so it never touches the labs' databases and
workspaces that the normal suite's nbval runs use at the same time.
Time: ~100 s with labs 00, 01, 06 (5 notebooks) on 2 cores; ~1.5x the
sum of all notebooks' nbval times / 2 + the half-runs, in general.
"""
import shutil
import subprocess
import sys

import pytest

from tools import chains, scenarios


pytestmark = pytest.mark.slow


def notebooks(root):
    found = sorted((root / "notebooks").glob("[0-9][0-9]-*.ipynb"))
    found += sorted((root / "notebooks" / "solutions").glob("[0-9][0-9]-*.ipynb"))
    return [p for p in found if not p.stem.endswith("-2nd-run")]


# the sandbox's notebooks/conftest.py: one xdist group per lab database (from the
# lab registry), so a lab's two runs go to one worker, one after the other, and
# two labs run at once; before a learner copy's nbval run (lab 00's first), its
# half-run; each solved lab's first run (lab 00's: its only copy) has the `flask`
# executable in its cells, the others the forked one of make test's kernels
NESTED_CONFTEST = '''
import json
import os
import signal

import pytest
from jupyter_client.manager import start_new_kernel

from labapp.runtime import labs
from tools import notebook_kernel

HALVED = set()


def _database(path):
    lab, solutions = labs.for_notebook(path)
    return lab.database(solutions) if lab else path.stem


@pytest.hookimpl(tryfirst=True)  # before xdist reads the marks
def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.xdist_group(_database(item.path)))


def half_run(path):
    """The first half of the notebook's code cells in a kernel, then SIGKILL it."""
    cells = [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]
    km, kc = start_new_kernel(kernel_name=notebook_kernel.NAME, cwd=str(path.parent))
    for cell in cells[: max(1, len(cells) // 2)]:
        kc.execute_interactive("".join(cell["source"]), timeout=120, output_hook=lambda m: None)
    os.kill(km.provisioner.process.pid, signal.SIGKILL)
    km.provisioner.process.wait()
    kc.stop_channels()
    km.cleanup_resources()  # its connection file and sockets: a ResourceWarning at exit, else
    with open(path.parents[1] / "killed-half-way.txt", "a") as done:
        done.write(path.name + "\\n")


@pytest.hookimpl(tryfirst=True)  # before nbval starts the notebook's kernel
def pytest_runtest_setup(item):
    path = item.path
    first = not path.stem.endswith("-2nd-run")
    solved = path.parent.name == "solutions" or not (path.parent / "solutions" / path.name).exists()
    if first and path.parent.name == "notebooks" and path not in HALVED:
        HALVED.add(path)
        notebook_kernel.serve()
        os.environ.pop(notebook_kernel.REAL, None)
        half_run(path)
    if solved and first:
        os.environ[notebook_kernel.REAL] = "1"
    else:
        os.environ.pop(notebook_kernel.REAL, None)
'''


@pytest.fixture(scope="module")
def sandbox():
    with scenarios.sandbox("lnb-") as (top, env):
        (top / "notebooks" / "conftest.py").write_text(NESTED_CONFTEST)
        yield top, env


@pytest.fixture(scope="module")
def nested_run(sandbox):
    top, env = sandbox
    books = notebooks(top)
    assert books, "no notebooks to run"
    args = []
    for book in reversed(books):
        args.append(str(book.relative_to(top)))
        solved = top / "notebooks" / "solutions" / book.name
        if book.parent.name == "solutions" or not solved.exists():
            # twice in a row: the solution copy, whose exercises leave the most behind
            # (a learner copy runs once, after its killed half-run: NESTED_CONFTEST)
            again = book.with_name(book.stem + "-2nd-run.ipynb")
            shutil.copyfile(book, again)
            args.append(str(again.relative_to(top)))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-q",
         "-p", "no:randomly", *args],
        cwd=top, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=1800)
    halved = top / "killed-half-way.txt"
    return sorted(halved.read_text().split()) if halved.exists() else [], run, books


def test_killed_half_way_then_twice_in_reverse_in_parallel(nested_run):
    halved, run, books = nested_run
    assert run.returncode == 0, run.stdout[-6000:]
    assert halved == sorted(p.name for p in books if p.parent.name == "notebooks")
    assert " passed" in run.stdout.splitlines()[-1], run.stdout[-2000:]


def test_fresh_runs_produce_the_committed_chains(nested_run, sandbox):
    """tests/chains/<lab>.patch is what a fresh run of the lab's notebook writes
    (refresh with `python tools/chains.py refresh <lab>`)."""
    top, _ = sandbox
    for lab in chains.chained():
        workspace = top / "notebooks" / "workspaces" / lab.workspace(solutions=lab.exercises)
        assert (workspace / "models.py").exists(), f"no notebook left {workspace}"
        assert chains.diff(lab, workspace) == chains.patch_file(lab).read_text(), (
            f"tests/chains/{lab.name}.patch is not what its notebook now produces: "
            f"python tools/chains.py refresh {lab.name} (after running the notebook)")
