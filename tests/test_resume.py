"""A learner whose server restarted continues where they were: in a new kernel, the
lab's setup cell keeps the workspace files they edited and the database they
migrated and filled (it says so, and how to start over). Starting over is one
explicit step: `lab.setup("lab02", fresh=True)`. Within one kernel, running the lab
again from the top starts it over (so Run All twice gives the same outputs), and
under LABAPP_FRESH=1 (what the test runners set: nbval, build_labs) every setup
starts over. Each execute below is a new kernel of the kit's venv, in a sandbox.
"""
import nbformat
import pytest

from helpers import execute_notebook
from tools import scenarios

SETUP = 'from labapp import lab\n\nlab02 = lab.setup("lab02"{})'
WORK = [  # a learner's first steps in lab 02, and an edit of their own in the editor
    "!flask db upgrade\n!flask loaddata",
    "open('models.py', 'a').write('\\n# my note: company comes next\\n')",
    "%sql INSERT INTO contacts (name, email) VALUES ('Mine', 'mine@example.org')",
]
LOOK = [
    "print('my note' in open('models.py').read())",
    "%sql SELECT count(*) AS mine FROM contacts WHERE email = 'mine@example.org'",
]


@pytest.fixture(scope="module")
def sandbox():
    with scenarios.sandbox("lrs-") as (top, env):
        env = {k: v for k, v in env.items() if k != "LABAPP_FRESH"}  # as a learner's kernel
        yield top, env


def kernel(top, env, sources):
    """A new kernel runs `sources` as a notebook in the sandbox's notebooks/: each
    cell's (error or None, its text)."""
    path = top / "notebooks" / "02-Evolve-resume.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources]), path)
    execute_notebook(path, env)
    cells = nbformat.read(path, as_version=4).cells
    path.unlink()
    out = []
    for cell in cells:
        error = next((o.evalue for o in cell.outputs if o.output_type == "error"), None)
        text = "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in cell.outputs)
        out.append((error, text))
    return out


def test_a_restarted_learner_keeps_their_edits_and_database_until_they_start_over(sandbox):
    top, env = sandbox
    first = kernel(top, env, [SETUP.format("")] + WORK + LOOK)
    assert all(error is None for error, _ in first), first
    assert first[0][1].startswith("Lab lab02: fresh database 'lab02', fresh workspace workspaces/lab02/")
    assert first[4][1] == "True\n" and first[5][1].endswith("[(1,)]"), first[4:]

    # the server restarted: a new kernel, the setup cell again
    second = kernel(top, env, [SETUP.format("")] + LOOK)
    assert all(error is None for error, _ in second), second
    assert second[0][1].startswith(
        "Lab lab02: continuing as you left it: database 'lab02', workspace workspaces/lab02/ "
        "(to start over: lab.setup('lab02', fresh=True))"), second[0][1]
    assert second[1][1] == "True\n", "the learner's edit of models.py was lost"
    assert second[2][1].endswith("[(1,)]"), "the learner's row was lost"

    # one explicit step starts over
    third = kernel(top, env, [SETUP.format(", fresh=True")] + LOOK[:1] + ["!flask db current"])
    assert third[0][1].startswith("Lab lab02: fresh database 'lab02', fresh workspace workspaces/lab02/")
    assert third[1][1] == "False\n" and "0001" not in third[2][1], third


def test_running_the_lab_again_in_one_kernel_or_under_a_test_runner_starts_over(sandbox):
    top, env = sandbox
    again = kernel(top, env, [SETUP.format("")] + WORK[1:2] + [SETUP.format("")] + LOOK[:1])
    assert again[2][1].startswith("Lab lab02: fresh database"), again[2]  # Run All, twice
    assert again[3][1] == "False\n"
    models = top / "notebooks" / "workspaces" / "lab02" / "models.py"  # an edit in the editor,
    models.write_text(models.read_text() + "\n# my note: company comes next\n")  # then a restart ...
    runner = kernel(top, {**env, "LABAPP_FRESH": "1"}, [SETUP.format("")] + LOOK[:1])
    assert runner[0][1].startswith("Lab lab02: fresh database"), runner[0]  # ... nbval's fresh lab
    assert runner[1][1] == "False\n"
