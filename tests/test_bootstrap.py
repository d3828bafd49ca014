"""tools/bootstrap.py compiles what a lab runs and leaves LATER to compile on first use.

Each of a lab's three processes (tests/lab_imports.py: JupyterLab's server, the
kernel, the `flask` CLI) imports no package in LATER, and finds every module it
does import compiled in .venv. (tests/test_pythons.py checks the same in the
venvs it builds fresh for the other Pythons.)
"""
import os
import sys

import pytest

from helpers import lab_imports
from tools import bootstrap


@pytest.mark.parametrize("role", ["server", "kernel", "cli"])
def test_a_lab_imports_nothing_left_for_later_and_finds_the_rest_compiled(role):
    found = lab_imports(sys.executable, role)
    assert "jupyter_server" in found["imported"] or "flask" in found["imported"]
    assert sorted(set(found["imported"]) & set(bootstrap.LATER)) == []
    assert found["uncompiled"] == []


def test_what_is_compiled_is_judged_below_site_packages(tmp_path):
    """A clone in a folder named tests (or under one) compiles what a lab runs all
    the same; LATER's packages and packages' own tests/ wait for first use."""
    site = tmp_path / "tests" / ".venv" / "lib" / "site-packages"
    for name in ("flask/app.py", "pip/main.py", "alembic/tests/test_x.py", "tests/conftest.py"):
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text("")
    assert [os.path.relpath(p, site) for p in bootstrap.files_labs_run(str(site))] == ["flask/app.py"]
