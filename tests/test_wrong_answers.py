"""Every exercise's self-check rejects a plausible wrong answer, not only the empty one.

The wrong answers are in tests/wrong_answers.py. For each lab, its solved
notebook runs once, in a sandbox (a copy of the kit with a server of its own),
with every wrong answer spliced in just before its exercise's solution:

    snapshot the lab (its databases, as templates, and its workspace files)
    the wrong answer
    the exercise's self-check            -> must print its hint (❌ ... the given text)
    restore the snapshot (then the answer's `after` cell, if it has one)
    the solution, the self-check         -> must print done (✅), as in the notebook

The right answers that the solution does not spell (wrong_answers.RIGHT) go in
the same way, and their self-check must print done.

The learner copies (nbval, notebooks/) prove that the empty answer gets a hint.
"""
import json
import re
import textwrap

import nbformat
import pytest

from helpers import ROOT, execute_notebook
from labapp.runtime import labs
from tools import scenarios
from wrong_answers import RIGHT, WRONG

WITH_EXERCISES = [spec for spec in labs.LABS if spec.exercises]

# the harness cell, run right after the setup cell: snapshot and restore a lab
HARNESS = textwrap.dedent('''
    # tests/test_wrong_answers.py: put a lab back as it was after a wrong answer
    def _wa_databases(lab):
        return [lab.database] + [lab.sibling(s).database for s in lab.spec.more_databases]

    def _wa_server(lab, statements):
        import time
        import sqlalchemy as sa
        from labapp.server import database
        engine = database.server_engine(lab.url)
        with engine.connect() as conn:
            for sql, params in statements:
                for attempt in range(50):  # CREATE ... TEMPLATE wants the source idle
                    if "TEMPLATE" in sql:
                        # first the sessions that wait, and gone (5 s at most): one whose blocker
                        # ended first could commit (lab 09's deploy, behind the forgotten session)
                        conn.execute(sa.text("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
                                             " WHERE datname = :n AND pid <> pg_backend_pid()"
                                             " AND cardinality(pg_blocking_pids(pid)) > 0"), params)
                        conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                                             " WHERE datname = :n AND pid <> pg_backend_pid()"), params)
                    try:
                        result = conn.execute(sa.text(sql), params)
                        break
                    except sa.exc.OperationalError:
                        time.sleep(0.1)
                else:
                    raise RuntimeError(f"the harness could not run {sql}")
        engine.dispose()

    def _wa_exists(lab, name):
        from labapp.server import database
        from sqlalchemy.engine import make_url
        return database.database_exists(make_url(lab.url).set(database=name))

    def _wa_snapshot(lab):
        import shutil, tempfile
        from labapp.runtime import lab as runtime
        runtime._close_sql_sessions()
        kept = [name for name in _wa_databases(lab) if _wa_exists(lab, name)]
        _wa_server(lab, [(f'DROP DATABASE IF EXISTS "{n}_wa" WITH (FORCE)', {}) for n in kept]
                   + [(f'CREATE DATABASE "{n}_wa" TEMPLATE "{n}"', {"n": n}) for n in kept])
        folder = tempfile.mkdtemp()
        shutil.copytree(lab.workspace, folder, dirs_exist_ok=True, symlinks=True,
                        ignore=shutil.ignore_patterns("servers", "__pycache__"))
        runtime._load_sql_magic(lab.url if lab.database in kept else None)
        return kept, folder

    def _wa_restore(lab, snapshot):
        import shutil
        from labapp.runtime import lab as runtime
        kept, folder = snapshot
        runtime._close_sql_sessions()
        statements = [(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)', {}) for n in _wa_databases(lab)]
        statements += [(f'CREATE DATABASE "{n}" TEMPLATE "{n}_wa"', {"n": f"{n}_wa"}) for n in kept]
        statements += [(f'DROP DATABASE "{n}_wa"', {}) for n in kept]
        _wa_server(lab, statements)
        for child in lab.workspace.iterdir():
            if child.name != "servers":
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        shutil.copytree(folder, lab.workspace, dirs_exist_ok=True, symlinks=True)
        shutil.rmtree(folder)
        runtime._load_sql_magic(lab.url if lab.database in kept else None)
''')

def check_cells(cells):
    """{exercise number: index of its self-check cell}."""
    found = {}
    for index, cell in enumerate(cells):
        match = re.search(r'\bverdict\(\s*"Exercise (\d+)"', cell.source) if cell.cell_type == "code" else None
        if match and "solution" not in cell.metadata.get("tags", []):
            found.setdefault(int(match.group(1)), index)
    return found


def variant(spec):
    """The solved notebook with the wrong answers spliced in, and for each inserted
    self-check, (cell id, exercise, hint expected)."""
    nb = nbformat.read(ROOT / "notebooks" / "solutions" / spec.notebook, as_version=4)
    checks = check_cells(nb.cells)
    variable = re.search(r"(\w+)\s*=\s*lab\.setup\(", "".join(c.source for c in nb.cells)).group(1)
    cells, expected, previous = [], [], -1
    for index, cell in enumerate(nb.cells):
        if "solution" in cell.metadata.get("tags", []):
            exercise = next(n for n, at in sorted(checks.items()) if at > index)
            # every wrong answer goes before the exercise's first solution cell, and only there
            first = previous != exercise
            answers = [*WRONG[spec.name], *RIGHT.get(spec.name, [])]
            for k, answer in enumerate(a for a in answers if first and a.exercise == exercise):
                check = nbformat.v4.new_code_cell(nb.cells[checks[exercise]].source)
                check.id = f"{'wrong' if answer.hint else 'right'}-{exercise}-{k}"
                cells += [nbformat.v4.new_code_cell(f"_wa = _wa_snapshot({variable})"),
                          nbformat.v4.new_code_cell(answer.answer.strip()), check,
                          nbformat.v4.new_code_cell(f"_wa_restore({variable}, _wa)")]
                cells += [nbformat.v4.new_code_cell(answer.after)] if answer.after else []
                expected.append((check.id, exercise, answer.hint))
            previous = exercise
        cells.append(cell)
        if re.search(r"\blab\.setup\(", cell.source):
            cells.append(nbformat.v4.new_code_cell(HARNESS))
    nb.cells = cells
    for cell in nb.cells:
        cell.pop("id", None) if not cell.get("id") else None
    return nb, expected, checks


def text(cell):
    return "".join(o.get("text", "") for o in cell.get("outputs", []))


@pytest.mark.parametrize("spec", WITH_EXERCISES, ids=lambda spec: spec.name)
def test_every_exercise_has_a_wrong_answer(spec):
    nb = nbformat.read(ROOT / "notebooks" / "solutions" / spec.notebook, as_version=4)
    covered = {wrong.exercise for wrong in WRONG.get(spec.name, [])}
    assert covered == set(check_cells(nb.cells)), "tests/wrong_answers.py"


@pytest.fixture(scope="module")
def sandbox():
    with scenarios.sandbox("lwa-") as (top, env):
        yield top, env


@pytest.mark.slow
@pytest.mark.parametrize("spec", [s for s in WITH_EXERCISES if s.name in WRONG], ids=lambda s: s.name)
def test_each_self_check_rejects_its_plausible_wrong_answer(sandbox, spec):
    top, env = sandbox
    nb, expected, checks = variant(spec)
    path = top / "notebooks" / "solutions" / spec.notebook
    nbformat.write(nb, path)
    execute_notebook(path, env, cell_timeout=600, timeout=1200)
    ran = {cell.get("id"): cell for cell in nbformat.read(path, as_version=4).cells}
    for cell_id, exercise, hint in expected:
        shown = text(ran[cell_id])
        if hint is None:  # a right answer
            assert shown.startswith(f"✅ Exercise {exercise}: done."), (
                f"Exercise {exercise}'s check rejected a right answer: {shown!r}")
            continue
        assert shown.startswith(f"❌ Exercise {exercise}: not yet. Hint: ") and hint in shown, (
            f"Exercise {exercise}'s check on the wrong answer printed {shown!r}")
    done = [text(cell) for cell in nbformat.read(path, as_version=4).cells
            if re.search(r'verdict\(\s*"Exercise \d+"', cell.source)
            and not cell.get("id", "").startswith(("wrong-", "right-"))]
    assert all(t.startswith("✅") for t in done) and len(done) == len(checks), done
    errors = [json.dumps(o)[:300] for cell in nbformat.read(path, as_version=4).cells
              for o in cell.get("outputs", []) if o.get("output_type") == "error"
              and cell.source.strip() not in {w.answer.strip() for w in WRONG[spec.name]}]
    assert errors == [], errors
