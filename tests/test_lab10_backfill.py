"""`flask backfill` (labapp/commands/backfill.py): committed keyset batches that
resume where they stopped.

* Killed half-way (SIGKILL, no clean exit), the progress it kept says exactly
  which rows are done: every row up to it filled, none after it.
* Run again, it goes on from there: in the end every row was updated exactly
  once (a trigger counts each row's updates), none skipped; a row inserted after
  the first run began is left to the app's trigger.
* Bad input is one line, and changes nothing.
"""
import signal
import subprocess
import time

import pytest

from helpers import postgres_only, rows, run_flask
from tools import scenarios

pytestmark = postgres_only

ROWS = 20_000
COUNTING = [  # each row's updates, counted by a trigger
    "CREATE TABLE items (id serial PRIMARY KEY, src int NOT NULL, dst int,"
    " updates int NOT NULL DEFAULT 0)",
    """CREATE FUNCTION items_count() RETURNS trigger AS $$
       BEGIN
           NEW.updates := OLD.updates + 1;
           RETURN NEW;
       END $$ LANGUAGE plpgsql""",
    "CREATE TRIGGER items_count BEFORE UPDATE ON items FOR EACH ROW EXECUTE FUNCTION items_count()",
]


def progress(url):
    found = rows(url, "SELECT last_id, top FROM labapp.backfills WHERE name = 'items.dst'") \
        if rows(url, "SELECT to_regclass('labapp.backfills')")[0][0] else []
    return found[0] if found else (0, None)


@pytest.fixture
def items(db_url):
    for statement in COUNTING:
        rows(db_url, statement)
    rows(db_url, "INSERT INTO items (src) SELECT i * 7 FROM generate_series(1, :n) i", n=ROWS)
    return db_url


def test_killed_half_way_it_resumes_without_redoing_or_skipping_a_row(items, db_name):
    env = scenarios.environment(FLASK_APP="labapp", LABAPP_DATABASE=db_name)
    slow = subprocess.Popen(["flask", "backfill", "items", "dst", "src", "--batch", "200",
                             "--pause", "0.02"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while progress(items)[0] < ROWS // 2 and slow.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert slow.poll() is None, "it finished before it could be killed half-way"
        slow.send_signal(signal.SIGKILL)
        slow.wait(10)
    finally:
        if slow.poll() is None:
            slow.kill()
            slow.wait(10)
    last, top = progress(items)
    assert 0 < last < ROWS and top == ROWS
    # the progress and the batches committed together: done up to `last`, nothing after
    assert rows(items, "SELECT count(*) FROM items WHERE dst IS NOT NULL") == [(last,)]
    assert rows(items, "SELECT max(id) FROM items WHERE dst IS NOT NULL") == [(last,)]
    rows(items, "INSERT INTO items (src) VALUES (-1)")  # the app's, after the first run began

    proc = run_flask("backfill", "items", "dst", "src", "--batch", "500", timeout=120)
    assert proc.returncode == 0, proc.output
    assert f"done, {ROWS - last} rows set by this run, 1 left NULL" in proc.output, proc.output
    assert rows(items, "SELECT count(*) FROM items WHERE id <= :n AND dst = src AND updates = 1",
                n=ROWS) == [(ROWS,)]
    assert rows(items, "SELECT dst, updates FROM items WHERE src = -1") == [(None, 0)]

    again = run_flask("backfill", "items", "dst", "src", timeout=120)  # nothing left to do
    assert "done, 0 rows set by this run" in again.output, again.output
    assert rows(items, "SELECT max(updates) FROM items") == [(1,)]


@pytest.mark.parametrize("args, expected", [
    (["items; DROP TABLE items", "dst", "src"], "a plain lower-case name"),
    (["nothing", "dst", "src"], "no table 'nothing'"),
    (["items", "dst", "no_such_column"], "UndefinedColumn"),
])
def test_bad_input_is_one_line_and_changes_nothing(items, args, expected):
    proc = run_flask("backfill", *args, timeout=120)
    assert proc.returncode == 1, proc.output
    errors = [line for line in proc.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and expected in errors[0], proc.output
    assert "Traceback" not in proc.output
    assert rows(items, "SELECT count(*) FROM items WHERE dst IS NOT NULL") == [(0,)]
