"""The lab registry, and `make reset LAB=labNN`: a lab's database and workspace
back to the start the registry gives it, as its setup cell does."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT, unique_name
from labapp.runtime import workspace
from labapp.runtime import lab, labs, selfcheck
from labapp.server import config, database

NOTEBOOKS = ROOT / "notebooks"


def setup_cells(path):
    """The code of the notebook's setup cells (those that call lab.setup)."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) for c in cells
            if c["cell_type"] == "code" and "lab.setup(" in "".join(c["source"])]


@pytest.mark.parametrize("spec", labs.LABS, ids=lambda spec: spec.name)
def test_each_registered_lab_has_its_notebooks_and_one_setup_call(spec):
    """Every copy of a lab exists and its one setup cell names the lab, and nothing else:
    what the lab starts from is the registry's to say."""
    for notebook, solutions in spec.copies():
        cells = setup_cells(NOTEBOOKS / notebook)
        assert len(cells) == 1, f"{notebook}: {len(cells)} setup cells"
        assert f'lab.setup("{spec.name}")' in cells[0], cells[0]
        assert labs.for_notebook(NOTEBOOKS / notebook) == (spec, solutions)


def test_every_notebook_is_registered():
    found = {p.relative_to(NOTEBOOKS).as_posix() for p in NOTEBOOKS.glob("**/[0-9][0-9]-*.ipynb")
             if "workspaces" not in p.parts and ".ipynb_checkpoints" not in p.parts}
    assert found == {notebook for spec in labs.LABS for notebook, _ in spec.copies()}


def test_names_of_databases_and_workspaces():
    lab03, _ = labs.get("lab03")
    assert lab03.database() == "lab03" and lab03.database(solutions=True) == "lab03_solutions"
    assert lab03.database(True, "_replay") == "lab03_solutions_replay"
    assert labs.get("lab03_solutions") == (lab03, True)


def fake_lab(name, **options):
    return labs.LabSpec(name, "99-Test.ipynb", "a test lab", **options)


def test_reset_restores_database_and_workspace(tmp_path, monkeypatch):
    spec = fake_lab(unique_name("t_reset"), migrations=True, data=True, more_databases=("_x",))
    try:
        broken = lab.Lab(spec, notebooks=tmp_path).reset()
        (broken.workspace / "models.py").write_text("oops")
        broken.sql("CREATE TABLE leftover (id int)")
        database.create_database(broken.sibling("_x").url)

        fresh = lab.Lab(spec, notebooks=tmp_path).reset()
        assert not selfcheck.has_table(fresh, "leftover")  # a new, empty database
        assert not database.database_exists(fresh.sibling("_x").url)
        assert (fresh.workspace / "models.py").read_text() == (workspace.MODELS).read_text()
        assert sorted(p.name for p in (fresh.workspace / "migrations").iterdir()) == [
            "README", "alembic.ini", "env.py", "script.py.mako", "versions"]
        assert (fresh.workspace / "migrations" / "versions" / "0001_create_crm_tables.py").exists()
        assert sorted(p.name for p in (fresh.workspace / "DATA").iterdir()) == [
            "contact_events.csv", "contacts.csv", "deals.csv"]
    finally:
        for suffix in ("", "_x"):
            database.drop_database(config.database_url(spec.database(suffix=suffix)), missing_ok=True)


def test_make_reset_resets_the_copy_it_names(tmp_path, monkeypatch, capsys):
    name = unique_name("t_copy")
    monkeypatch.setattr(labs, "LABS", (*labs.LABS, fake_lab(name, migrations=True)))
    monkeypatch.setattr(lab, "CLONE_NOTEBOOKS", tmp_path)
    try:
        assert lab.main([f"{name}_solutions"]) == 0
        assert capsys.readouterr().out == (f"Lab {name}: reset database '{name}_solutions' and "
                                           f"workspace workspaces/{name}_solutions/\n")
        assert (tmp_path / "workspaces" / f"{name}_solutions" / "migrations" / "env.py").exists()
    finally:
        database.drop_database(config.database_url(f"{name}_solutions"), missing_ok=True)


def test_unknown_lab_is_one_line_and_a_nonzero_exit():
    proc = subprocess.run([sys.executable, "-m", "labapp.runtime.lab", "lab99"], capture_output=True,
                          text=True, cwd=ROOT)
    assert proc.returncode == 1
    assert proc.stderr.startswith("Error: no lab called 'lab99' (the labs: lab00, lab01, ")
    assert proc.stderr.count("\n") == 1
    usage = subprocess.run([sys.executable, "-m", "labapp.runtime.lab"], capture_output=True, text=True)
    assert usage.returncode == 2 and usage.stderr.startswith("usage: make reset LAB=")


def test_git_in_a_lab_workspace_never_reaches_the_kit_repository(monkeypatch, tmp_path):
    """A lab that runs `!git commit` in a workspace whose .git is gone (reset by
    another run) must fail there, not commit into the kit's own clone."""
    name = unique_name("t_git")
    monkeypatch.setattr(labs, "LABS", (*labs.LABS, fake_lab(name, createdb=False)))
    monkeypatch.setattr(lab, "_notebook_folder", NOTEBOOKS)
    monkeypatch.chdir(ROOT)  # setup() changes the working folder and these variables
    for variable in ("PATH", "LABAPP_DATABASE", "GIT_CEILING_DIRECTORIES"):
        monkeypatch.setenv(variable, os.environ.get(variable, ""))
    try:
        setup_lab = lab.setup(name)
        proc = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=setup_lab.workspace,
                              capture_output=True, text=True)
        assert proc.returncode != 0 and "not a git repository" in proc.stderr
    finally:
        shutil.rmtree(NOTEBOOKS / "workspaces" / name, ignore_errors=True)


def test_a_git_lab_commits_with_the_kit_identity_and_clock(monkeypatch, tmp_path):
    """Labs that commit (03, 06) get a fixed author and clock, and no personal
    git settings, so every run makes the same commits."""
    name = unique_name("t_gitid")
    monkeypatch.setattr(labs, "LABS", (*labs.LABS, fake_lab(name, createdb=False, git=True)))
    monkeypatch.setattr(lab, "_notebook_folder", tmp_path)
    monkeypatch.chdir(ROOT)
    for variable in ("PATH", "LABAPP_DATABASE", "GIT_CEILING_DIRECTORIES", "GIT_CONFIG_GLOBAL",
                     "GIT_CONFIG_NOSYSTEM", "GIT_AUTHOR_DATE", "GIT_COMMITTER_DATE",
                     "PYTHONDONTWRITEBYTECODE"):
        monkeypatch.setenv(variable, os.environ.get(variable, ""))
    setup_lab = lab.setup(name)
    ws = setup_lab.workspace

    def git(*args):
        return subprocess.run(["git", *args], cwd=ws, capture_output=True, text=True, check=True).stdout

    git("init", "-q")
    git("add", "-A")
    git("commit", "-q", "-m", "first")
    assert git("log", "--format=%an <%ae> %ad", "--date=iso-strict") == (
        f"Lab {name} <lab{name}@example.com> 2026-11-01T09:00:00+00:00\n")
    assert Path(ws).parent == tmp_path / "workspaces"


def test_a_lab_error_in_a_cell_shows_as_one_line(monkeypatch, capsys):
    """setup() makes the kernel show a LabError as `Error: ...`, not a traceback;
    LABAPP_DEBUG=1 keeps the traceback."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        cell = "from labapp.runtime import labs\nlabs.get('lab99')"
        monkeypatch.setenv("LABAPP_DEBUG", "1")
        lab._show_errors_in_one_line()
        shell.run_cell(cell)
        assert "Traceback" in capsys.readouterr().out
        monkeypatch.delenv("LABAPP_DEBUG")
        lab._show_errors_in_one_line()
        result = shell.run_cell(cell)
        assert capsys.readouterr().out.strip().startswith("Error: no lab called 'lab99'")
        assert not result.success  # still an error: Run All stops there
    finally:
        shell.set_custom_exc((), None)
        InteractiveShell.clear_instance()


def test_a_git_cell_run_before_its_setup_cell_cannot_commit_into_the_kit():
    """Lab 03's and 06's `!git` cells run in the lab's own repo. Before the setup cell makes it
    (a restarted kernel, cells run out of order) their folder is notebooks/, inside this clone:
    under `make lab` and `make test` git does not look up from there."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git clone")
    shown = subprocess.run(
        ["make", "-s", "--no-print-directory", "-C", str(ROOT), "--eval",
         "git-in-notebooks: ; @cd notebooks && git rev-parse --show-toplevel", "git-in-notebooks"],
        capture_output=True, text=True)
    assert shown.returncode != 0 and "not a git repository" in shown.stderr, shown
