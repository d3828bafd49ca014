"""What every part of the benchmark shares: the Table its rows go to, a timed
command, the environment its commands run in, and a scratch database.

    table = Table()
    seconds, proc = timed(["flask", "--app", "labapp", "--help"], env=child_env())
    table.row("CLI floor", seconds, "best of 3")
    with scratch_database("bench_enum") as (name, url): ...
"""
import contextlib
import os
import subprocess
import sys
import time

from labapp.server import config, database
from tools import scenarios

# the kit's targets, which the table says hold or not (nothing fails on a time); the
# suite's: `make test` with every lab in 5 minutes on two cores (issue 22)
TARGET_SUITE, TARGET_LAB, TARGET_RATIO, TARGET_SETUP = 300.0, 20.0, 1.5, 20.0


def shown(value):
    """A time as the table shows it (ms below 0.1 s), or a text as it is."""
    if not isinstance(value, float):
        return f"{value:>10}"
    return f"{value * 1000:7.1f} ms" if value < 0.1 else f"{value:8.2f} s"


class Table:
    """The benchmark's rows (what, seconds or a text, a note): each printed to
    stderr as it is measured, and all of them again, aligned, at the end."""

    def __init__(self):
        self.rows = []

    def row(self, what, value, note=""):
        self.rows.append((what, value, note))
        print(f"  {what:<44} {shown(value)}  {note}", file=sys.stderr, flush=True)

    def print(self):
        width = max((len(what) for what, _, _ in self.rows), default=4)
        print(f"\n{'what':<{width}}  {'time':>10}  notes")
        print(f"{'-' * width}  {'-' * 10}  {'-' * 5}")
        for what, value, note in self.rows:
            print(f"{what:<{width}}  {shown(value)}  {note}")


def child_env(**changes):
    """The environment of the commands the benchmark times: the user's own server
    (DATABASE_URL) kept, the database and app chosen by each command, no pytest
    options of the run around it."""
    return scenarios.environment("LABAPP_DATABASE", "FLASK_APP", scenarios.PYTEST_RUN, **changes)


def timed(args, **kwargs):
    """(seconds, the CompletedProcess) of `args`, stdout and stderr merged."""
    start = time.perf_counter()
    proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          **kwargs)
    return time.perf_counter() - start, proc


@contextlib.contextmanager
def scratch_database(prefix):
    """A new database on the configured server, named after this process; the
    `flask` commands and app servers this process starts use it (LABAPP_DATABASE,
    as a lab's setup cell sets it). Yields (its name, its URL); dropped after."""
    name = f"{prefix}_{os.getpid()}"
    url = config.database_url(name)
    database.create_database(url)
    os.environ["LABAPP_DATABASE"] = name
    try:
        yield name, url
    finally:
        os.environ.pop("LABAPP_DATABASE", None)
        database.drop_database(url, missing_ok=True)
