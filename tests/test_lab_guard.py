"""A lab whose setup cell failed, or has not run, changes nothing outside its
workspace: its other cells stop with one line that says to run the setup cell
(before, a failed setup left the kernel in notebooks/, where lab 03's `!git init`
made a repository in the learner's clone). The setup cell's own failure is one
line that names the cause. Run in real kernels of the kit's venv, in a sandbox."""
import nbformat
import pytest

from helpers import execute_notebook, unusable_data_folder
from tools import scenarios

SETUP = 'from labapp import lab\n\nlab01 = lab.setup("lab01")'
# what a lab's later cells do outside a workspace, if they run there
HARM = ["!git init -q", "open('made-by-a-cell.txt', 'w').write('x')"]


@pytest.fixture(scope="module")
def sandbox():
    with scenarios.sandbox("lgd-") as (top, env):
        yield top, env


def run_cells(top, env, sources):
    """Run `sources` as a notebook of lab 01's in the sandbox's notebooks/; each cell's
    (error lines or None, printed text)."""
    path = top / "notebooks" / "01-First-Migration-guard.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources]), path)
    execute_notebook(path, env)
    cells = nbformat.read(path, as_version=4).cells
    path.unlink()
    return [(next((o.traceback for o in c.outputs if o.output_type == "error"), None),
             "".join(o.get("text", "") for o in c.outputs)) for c in cells]


def nothing_made(top):
    notebooks = top / "notebooks"
    return not (notebooks / ".git").exists() and not (notebooks / "made-by-a-cell.txt").exists()


def test_before_the_setup_cell_no_other_cell_runs(sandbox):
    top, env = sandbox
    ran = run_cells(top, env, HARM + [SETUP, "print('ran')"])
    for error, _ in ran[:2]:
        assert error == ["Error: run the lab's setup cell first (the first code cell: "
                         "lab.setup(...)); this cell did not run"], error
    assert nothing_made(top)
    assert ran[2][0] is None, ran[2]  # the setup cell runs, and then the others do
    assert ran[3] == (None, "ran\n")


def test_after_a_failed_setup_cell_no_other_cell_runs(sandbox, open_tmp):
    top, env = sandbox
    cause = unusable_data_folder(open_tmp / "pg")
    ran = run_cells(top, {**env, "LABAPP_PGDATA": str(open_tmp / "pg")}, [SETUP] + HARM)
    error, _ = ran[0]
    assert len(error) == 1 and error[0].startswith("Error: the embedded PostgreSQL at "), error
    assert cause in error[0], error
    for error, _ in ran[1:]:
        assert error == ["Error: the setup cell did not finish (its error says why): fix that "
                         "and run it again; this cell did not run"], error
    assert nothing_made(top)
