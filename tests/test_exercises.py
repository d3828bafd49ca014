"""Exercises: self-checks tell the truth, and each lab's learner copy is its
solution notebook with the solutions taken out."""
import subprocess
import sys

import nbformat
import pytest
import sqlalchemy as sa

from helpers import ROOT
from tools import build_labs, lab_times
from labapp.runtime import selfcheck
from labapp.runtime import labs
from labapp.runtime.lab import Lab

SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("[0-9][0-9]-*.ipynb"))


@pytest.fixture
def lab(schema, db_name):
    return Lab(labs.LabSpec(db_name, "99-Test.ipynb", "a test lab"))


def test_self_check_gives_the_hint_until_the_exercise_is_done(lab, db_url, capsys):
    def exercise_1():
        selfcheck.verdict("Exercise 1", [
            (selfcheck.has_column(lab, "contacts", "phone", "character varying"), "add a phone column"),
        ])
        return capsys.readouterr().out

    assert exercise_1() == "❌ Exercise 1: not yet. Hint: add a phone column\n"
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE contacts ADD COLUMN phone varchar(30)"))
    assert exercise_1() == "✅ Exercise 1: done.\n"


def test_first_failing_hint_wins(lab, capsys):
    selfcheck.verdict("Exercise 2", [
        (selfcheck.enum_labels(lab, "dealcurrency") == ["USD", "EUR", "AED", "GBP"], "unused"),
        (selfcheck.version(lab) == "0002", "run `flask db upgrade`"),
        (False, "never shown"),
    ])
    assert capsys.readouterr().out == "❌ Exercise 2: not yet. Hint: run `flask db upgrade`\n"


def test_inspection_helpers_read_the_real_database(lab):
    assert selfcheck.columns(lab, "deals")["currency"] == "dealcurrency"
    assert selfcheck.row_count(lab, "deals") == 0
    assert selfcheck.row_count(lab, "no_such_table") is None
    assert selfcheck.version(lab) is None


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.name)
def test_learner_copy_matches_its_solution(solution):
    learner = ROOT / "notebooks" / solution.name
    assert learner.exists(), f"run: python tools/build_labs.py {solution.name}"
    solved = nbformat.read(solution, as_version=4).cells
    copy = nbformat.read(learner, as_version=4).cells
    assert len(solved) == len(copy)
    exercises = 0
    for s, c in zip(solved, copy, strict=True):
        if "solution" in s.metadata.get("tags", []):
            assert "exercise" in c.metadata.get("tags", []) and c.source == build_labs.stub(s.source)
            exercises += 1
        else:
            assert c.source == s.source
    assert exercises >= 2, "every lab has at least two exercises"
    # built by running it top to bottom in a fresh kernel (make test runs it under nbval
    # only with CI=true): every code cell has its outputs, in order
    counts = [c.execution_count for c in copy if c.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1)), f"run: python tools/build_labs.py {solution.name}"


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.name)
def test_every_self_check_passes_in_the_solution_and_hints_in_the_lab(solution):
    def verdicts(path):
        texts = [o.get("text", "") for cell in nbformat.read(path, as_version=4).cells
                 if cell.cell_type == "code" for o in cell.outputs]
        return [line for text in texts for line in text.splitlines() if line.startswith(("✅", "❌"))]

    solved, learner = verdicts(solution), verdicts(ROOT / "notebooks" / solution.name)
    assert len(solved) >= 2 and all(v.startswith("✅") for v in solved), solved
    assert len(learner) == len(solved) and all(v.startswith("❌") for v in learner), learner


# -- what every lab from 01 on offers (conventions: tools/lab_times.py) ---------------

WITH_EXERCISES = [spec for spec in labs.LABS if spec.exercises]


@pytest.mark.parametrize("spec", WITH_EXERCISES, ids=lambda spec: spec.name)
def test_exercises_predictions_and_a_stated_time_that_holds(spec):
    counted = lab_times.measure(spec)
    assert counted.exercises >= 3, "at least three exercises"
    assert counted.diagnose >= 1, "at least one `**Exercise N (diagnose).**`"
    assert counted.predictions >= 2, "at least two `**Predict.**` questions with <details>"
    assert counted.stated, "the lab says how long it takes (*About N minutes.*; tests/test_run_of_show.py)"


def test_build_labs_says_how_to_call_it_and_refuses_an_unknown_lab_in_one_line():
    """tools/build_labs.py: --help prints its usage; a name that is no lab is one line,
    before any kernel starts, and builds nothing (no traceback)."""
    usage = subprocess.run([sys.executable, "tools/build_labs.py", "--help"], cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
    assert usage.returncode == 0 and "python tools/build_labs.py" in usage.stdout, usage.stderr
    wrong = subprocess.run([sys.executable, "tools/build_labs.py", "02-No-Such-Lab.ipynb"],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 1 and "Traceback" not in wrong.stderr, wrong.stderr
    assert wrong.stderr.strip().splitlines() == [
        "build_labs: no lab 02-No-Such-Lab.ipynb in notebooks/ or notebooks/solutions/"
        " (a name like 02-Evolve-A-Live-Schema.ipynb); nothing was built"]
