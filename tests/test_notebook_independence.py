"""Every lab runs alone, twice in a row, in any order, in parallel, and after
a kernel was killed half-way through it (slow: run under CI, `-m slow`).

Strict nbval of each lab once is the normal suite's job (notebooks/). Here,
to keep the time down, ONE nested pytest run covers the other orders:

1. every learner lab is started in a kernel, run half-way and killed with
   SIGKILL (stale kernel pid in the server's .handle_pids.json, a database
   and workspace left mid-lab);
2. then `pytest -n 2 --dist loadgroup` runs every notebook (learner copies
   and solutions) in REVERSE order, two labs at a time on two kernels; each
   solution copy (or a lab's only copy) TWICE in a row (a copy of the file
   under another name: pytest would drop a duplicate path), each learner
   copy once, right after its killed half-run;
3. the workspaces the solution notebooks leave are compared, file by file,
   with the migration chains committed under tests/chains/.

The nested run works in a sandbox: a copy of labapp/ and notebooks/ under a
temporary folder (imported first through PYTHONPATH) and an embedded server
of its own (LABAPP_PGDATA), so it never touches the labs' databases and
workspaces that the normal suite's nbval runs use at the same time.
Time: ~100 s with labs 00, 01, 06 (5 notebooks) on 2 cores; ~1.5x the
sum of all notebooks' nbval times / 2 + the half-runs, in general.
"""
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from conftest import make_sandbox, stop_sandbox_server

ROOT = Path(__file__).resolve().parent.parent
CHAINS = Path(__file__).resolve().parent / "chains"
CREATE_DATE = re.compile(r"Create Date: [^\n]*")

pytestmark = pytest.mark.slow


def notebooks(root):
    found = sorted((root / "notebooks").glob("[0-9][0-9]-*.ipynb"))
    found += sorted((root / "notebooks" / "solutions").glob("[0-9][0-9]-*.ipynb"))
    return [p for p in found if not p.stem.endswith("-2nd-run")]


# the sandbox's notebooks/conftest.py: one xdist group per lab database, so a lab's
# two runs go to one worker, one after the other, and two labs run at once
GROUPS_CONFTEST = '''
import json, re
import pytest

def _database(path):
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        match = re.search(r"lab\\.setup\\(\\s*[\\"'](\\w+)", "".join(cell["source"]))
        if match:
            return match.group(1) + ("_solutions" if path.parent.name == "solutions" else "")
    return path.stem

@pytest.hookimpl(tryfirst=True)  # before xdist reads the marks
def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.xdist_group(_database(item.path)))
'''

# run the first half of a notebook's code cells in a kernel, then SIGKILL it
HALF_RUN = textwrap.dedent('''
    import json, os, signal, sys
    from jupyter_client.manager import start_new_kernel

    for path in sys.argv[1:]:
        cells = [c for c in json.load(open(path))["cells"] if c["cell_type"] == "code"]
        km, kc = start_new_kernel(kernel_name="python3", cwd=os.path.dirname(path))
        for cell in cells[: max(1, len(cells) // 2)]:
            kc.execute_interactive("".join(cell["source"]), timeout=120, output_hook=lambda m: None)
        os.kill(km.provisioner.process.pid, signal.SIGKILL)
        km.provisioner.process.wait()
        kc.stop_channels()
        print("killed half-way:", os.path.relpath(path), flush=True)
''')


@pytest.fixture(scope="module")
def sandbox():
    top = Path(tempfile.mkdtemp(prefix="lnb-", dir="/tmp"))
    env = make_sandbox(top)
    (top / "notebooks" / "conftest.py").write_text(GROUPS_CONFTEST)
    yield top, env
    stop_sandbox_server(top, env)
    shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(scope="module")
def nested_run(sandbox):
    top, env = sandbox
    books = notebooks(top)
    assert books, "no notebooks to run"
    learner = [str(p) for p in books if p.parent.name == "notebooks"]
    half = subprocess.run([sys.executable, "-W", "ignore", "-c", HALF_RUN, *learner], cwd=top,
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=600)
    args = []
    for book in reversed(books):
        args.append(str(book.relative_to(top)))
        solved = top / "notebooks" / "solutions" / book.name
        if book.parent.name == "solutions" or not solved.exists():
            # twice in a row: the solution copy, whose exercises leave the most behind
            # (a learner copy runs once, after its killed half-run)
            again = book.with_name(book.stem + "-2nd-run.ipynb")
            shutil.copyfile(book, again)
            args.append(str(again.relative_to(top)))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-q",
         "-p", "no:randomly", *args],
        cwd=top, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=1800)
    return half, run, books


def test_killed_half_way_then_twice_in_reverse_in_parallel(nested_run):
    half, run, books = nested_run
    assert half.returncode == 0, half.stdout[-3000:]
    assert half.stdout.count("killed half-way:") == sum(p.parent.name == "notebooks" for p in books)
    assert run.returncode == 0, run.stdout[-6000:]
    assert " passed" in run.stdout.splitlines()[-1], run.stdout[-2000:]


def _tree(folder):
    return {str(p.relative_to(folder)): CREATE_DATE.sub("", p.read_text())
            for p in sorted(folder.rglob("*")) if p.is_file()
            and "__pycache__" not in p.parts and p.suffix in (".py", ".ini", ".mako", "")}


def test_fresh_runs_produce_the_committed_chains(nested_run, sandbox):
    """tests/chains/<lab>/ equals the workspace a fresh run of the lab leaves
    (refresh with tests/test_migration_chains.py --refresh)."""
    top, _ = sandbox
    labs = sorted(p.name for p in CHAINS.glob("lab*") if (p / "models.py").exists())
    assert labs
    for lab in labs:
        workspaces = top / "notebooks" / "workspaces"
        workspace = next((w for w in (workspaces / f"{lab}_solutions", workspaces / lab)
                          if (w / "migrations").exists()), None)
        assert workspace, f"no notebook left a {lab} workspace with migrations/"
        produced = _tree(workspace / "migrations")
        produced["models.py"] = (workspace / "models.py").read_text()
        committed = _tree(CHAINS / lab / "migrations")
        committed["models.py"] = (CHAINS / lab / "models.py").read_text()
        assert produced.keys() == committed.keys(), lab
        for name in committed:
            assert produced[name] == committed[name], (
                f"tests/chains/{lab}/{name} is not what the notebook now produces: "
                "run it and refresh (tests/test_migration_chains.py --refresh)")
