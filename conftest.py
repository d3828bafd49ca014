"""pytest anywhere in the kit (`pytest notebooks/01-First-Migration.ipynb` too):
nbval compares the notebooks under tests/sanitize.cfg with this clone's exact
paths filled in (tools/sanitize.py). The suite's fixtures: tests/conftest.py."""
import os
import tempfile
from pathlib import Path

from tools import sanitize


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
