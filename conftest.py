"""pytest anywhere in the kit (`pytest notebooks/01-First-Migration.ipynb` too):
nbval compares the notebooks under tests/sanitize.cfg with this clone's exact
paths filled in (tools/sanitize.py). The suite's fixtures: tests/conftest.py.

A lab's learner copy is built from its solved copy (tools/build_labs.py), and
`make test` checks that it is exactly that, hints included
(tests/test_exercises.py); running it under nbval is marked `learner_copy`,
which `make test` leaves to CI (CI=true): half the notebooks' time. Every
notebook's items are marked `notebook` (with the slow checks, the nested runs of
tests/test_notebook_independence.py cover them all)."""
import os
import tempfile
from pathlib import Path

import pytest

from tools import sanitize

# every lab a test runs starts over (labapp.runtime.lab.setup): stored outputs come from a
# fresh lab, and a learner's kernel, without this, continues their earlier work instead
os.environ["LABAPP_FRESH"] = "1"


def pytest_configure(config):
    given = getattr(config.option, "nbval_sanitize_with", None)
    if given and Path(given).resolve() == sanitize.CFG:
        handle, filled = tempfile.mkstemp(prefix="labapp-sanitize-", suffix=".cfg")
        os.close(handle)
        config.option.nbval_sanitize_with = sanitize.write(filled)
        config._labapp_sanitize_file = filled


def pytest_unconfigure(config):
    filled = getattr(config, "_labapp_sanitize_file", None)
    if filled:
        os.unlink(filled)


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = Path(str(item.fspath))
        if path.suffix == ".ipynb":
            item.add_marker(pytest.mark.notebook)
            if (path.parent / "solutions" / path.name).exists():
                item.add_marker(pytest.mark.learner_copy)
