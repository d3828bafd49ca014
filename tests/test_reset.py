"""`make reset LAB=labNN`: a lab's database and workspace back to the start,
with the flags its own setup cell uses."""
import json
import os
import shutil
import subprocess
import sys

import nbformat

from conftest import ROOT, unique_name
from labapp import config, database, lab, selfcheck


def test_each_lab_is_reset_with_the_flags_of_its_setup_cell():
    assert lab.setup_arguments("lab01") == {"createdb": False}
    assert lab.setup_arguments("lab06") == {"migrations": True, "data": True}


def test_reset_restores_database_and_workspace(tmp_path, monkeypatch):
    name = unique_name("t_reset")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        f'from labapp import lab\n\n{name} = lab.setup("{name}", migrations=True, data=True)')]
    (tmp_path / "99-Test.ipynb").write_text(json.dumps(nb))
    monkeypatch.setenv("LABAPP_DATABASE", name)
    url = config.database_url()
    try:
        broken = lab.reset(name, notebooks=tmp_path)
        (broken.workspace / "models.py").write_text("oops")
        broken.sql("CREATE TABLE leftover (id int); SELECT 1")

        fresh = lab.reset(name, notebooks=tmp_path)
        assert not selfcheck.has_table(fresh, "leftover")  # a new, empty database
        assert (fresh.workspace / "models.py").read_text() == (ROOT / "labapp" / "models.py").read_text()
        assert (fresh.workspace / "migrations" / "versions" / "0001_create_crm_tables.py").exists()
        assert sorted(p.name for p in (fresh.workspace / "DATA").iterdir()) == [
            "contact_events.csv", "contacts.csv", "deals.csv"]
    finally:
        database.drop_database(url, missing_ok=True)
        shutil.rmtree(lab.WORKSPACES / name, ignore_errors=True)


def test_unknown_lab_is_one_line_and_a_nonzero_exit():
    proc = subprocess.run([sys.executable, "-m", "labapp.lab", "lab99"], capture_output=True,
                          text=True, cwd=ROOT)
    assert proc.returncode == 1
    assert proc.stderr == "Error: no notebook in notebooks/ calls lab.setup('lab99')\n"
    usage = subprocess.run([sys.executable, "-m", "labapp.lab"], capture_output=True, text=True)
    assert usage.returncode == 2 and usage.stderr.startswith("usage: make reset LAB=")


def test_git_in_a_lab_workspace_never_reaches_the_kit_repository(monkeypatch):
    """A lab that runs `!git commit` in a workspace whose .git is gone (reset by
    another run) must fail there, not commit into the kit's own clone."""
    name = unique_name("t_git")
    monkeypatch.setenv("LABAPP_DATABASE", name)
    monkeypatch.chdir(ROOT)  # setup() changes the working folder and these variables
    monkeypatch.setenv("PATH", os.environ["PATH"])
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", "")
    try:
        setup_lab = lab.setup(name, createdb=False)
        proc = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=setup_lab.workspace,
                              capture_output=True, text=True)
        assert proc.returncode != 0 and "not a git repository" in proc.stderr
    finally:
        shutil.rmtree(lab.WORKSPACES / name, ignore_errors=True)
