"""pytest anywhere in the kit (`pytest notebooks/01-First-Migration.ipynb` too):
nbval compares the notebooks under tests/sanitize.cfg with this clone's exact
paths filled in (tools/sanitize.py). The suite's fixtures: tests/conftest.py.

A lab's learner copy is built from its solved copy (tools/build_labs.py), and
`make test` checks that it is exactly that, hints included
(tests/test_exercises.py); running it under nbval is marked `learner_copy`,
which `make test` leaves to CI (CI=true): half the notebooks' time. Every
notebook's items are marked `notebook` (with the slow checks, the nested runs of
tests/test_notebook_independence.py cover them all).

The labs' kernels are tools/notebook_kernel.py's: their `!flask` commands are forked
from a process that has imported the app (LABAPP_TEST_REAL_FLASK=1: the executable).

Under xdist's `--dist loadfile` the files known to take longest go out first
(LONGEST_FIRST): xdist's own order is by number of tests, most first, which sent a file
of two or three long tests (kernels, a whole room) out last, to run alone at the end."""
import os
import tempfile
from pathlib import Path

import pytest

from tools import notebook_kernel, sanitize

# every lab a test runs starts over (labapp.runtime.lab.setup): stored outputs come from a
# fresh lab, and a learner's kernel, without this, continues their earlier work instead
os.environ["LABAPP_FRESH"] = "1"


def pytest_configure(config):
    if getattr(config.option, "nbval", False) and notebook_kernel.available():
        config.option.nbval_current_env = False
        config.option.nbval_kernel_name = notebook_kernel.NAME
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


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Before a notebook's kernel starts: the server its `!flask` commands fork from."""
    if item.path.suffix == ".ipynb" and item.config.option.nbval_kernel_name == notebook_kernel.NAME:
        notebook_kernel.serve()


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = Path(str(item.fspath))
        if path.suffix == ".ipynb":
            item.add_marker(pytest.mark.notebook)
            if (path.parent / "solutions" / path.name).exists():
                item.add_marker(pytest.mark.learner_copy)


# The files that take longest, longest first (seconds of one make test run, and of one
# CI=true run, per file: --junitxml, summed): notebooks, tests that start kernels or a
# whole room. The labs whose apps serve traffic (07-10) are spaced out so that they
# seldom run at once: their loads then get the CPU they measure with. The rest follow
# in xdist's own order.
LONGEST_FIRST = (
    "tests/test_notebook_independence.py",  # the slow checks (CI=true): the nested runs
    "tests/test_hub.py",
    "tests/test_wrong_answers.py",  # one lab's solution each test: SPLIT_BY_TEST
    "tests/test_pythons.py",
    "tests/test_hub_room.py",
    "tests/test_paths.py",
    "tests/test_learners.py",
    "notebooks/solutions/11-Adopt-An-Existing-Database.ipynb",  # make test's
    "notebooks/solutions/10-Constraints-Types-Backfills.ipynb",  # traffic
    "tests/test_room_view.py",
    "notebooks/solutions/06-Migrations-In-A-Team.ipynb",
    "notebooks/solutions/09-Many-App-Servers.ipynb",  # traffic
    "tests/test_resume.py",
    "notebooks/solutions/03-Production-Branch-Replay.ipynb",
    "notebooks/solutions/07-Migrate-While-The-App-Serves.ipynb",  # traffic
    "tests/test_lab_guard.py",
    "tests/test_room.py",
    "notebooks/solutions/01-First-Migration.ipynb",
    "notebooks/solutions/08-Rename-Without-Downtime.ipynb",  # traffic
    "notebooks/solutions/02-Evolve-A-Live-Schema.ipynb",
    "notebooks/solutions/05-Duplicate-Enum-ContactEventStatus.ipynb",
    "tests/test_lab09_fleet.py",
    "tests/test_lab11_adopt.py",
    "notebooks/solutions/04-Enum-Swap-DealCurrency.ipynb",
    "tests/test_lab07_live_schema.py",
    "tests/test_embedded_server.py",
    "tests/test_migration_chains.py",
    "tests/test_replay.py",
    "tests/test_bad_inputs.py",
    "tests/test_check.py",
    "tests/test_lab08_rename.py",
    "tests/test_appserver.py",
    "tests/test_first_start.py",
    "tests/test_bootstrap.py",
    "tests/test_site.py",
    "tests/test_locktrace.py",
    "tests/test_compose.py",
)
# files whose tests go out one by one, not as one file: each runs a whole lab (CI=true),
# eleven in a row would keep one worker busy for the last third of the run
SPLIT_BY_TEST = ("tests/test_wrong_answers.py",)


@pytest.hookimpl(optionalhook=True)  # a hook of xdist's: unknown when it is not loaded
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadfile":
        return None  # xdist's own
    from xdist.scheduler import LoadFileScheduling  # only under xdist

    class LongestFirst(LoadFileScheduling):
        """xdist's loadfile, the LONGEST_FIRST files at the head of its queue, and the
        SPLIT_BY_TEST files' tests each a unit of its own."""
        ordered = False

        def _split_scope(self, nodeid):
            path = super()._split_scope(nodeid)
            return nodeid if path in SPLIT_BY_TEST else path

        def _assign_work_unit(self, node):
            # the first hand-out follows the queue's making: order it, once
            if not self.ordered:
                self.ordered = True
                rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
                for scope in sorted(self.workqueue,
                                    key=lambda s: rank.get(s.split("::")[0], len(rank))):
                    self.workqueue.move_to_end(scope)
            super()._assign_work_unit(node)

    return LongestFirst(config, log)
