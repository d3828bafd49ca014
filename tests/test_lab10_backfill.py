"""`flask backfill` (labapp/commands/backfill.py): committed keyset batches that
resume where they stopped.

* Killed half-way (SIGKILL, no clean exit), the progress it kept says exactly
  which rows are done: every row up to it filled, none after it.
* Run again, it goes on from there (and says where, then each tenth of the ids):
  in the end every row was updated exactly once (a trigger counts each row's
  updates), none skipped; a row inserted after
  the first run began is left to the app's trigger.
* On a terminal, a progress bar; under a Jupyter kernel (a cell's `!flask` runs on a
  pseudo-terminal) the lines, which a notebook can store.
* Bad input is one line, and changes nothing.

`flask batch-delete`, the same walk to delete, and lab 10's words on size:

* it deletes exactly the rows its condition matches, each once, one transaction per
  batch of ids (a trigger logs each deleted row with its transaction);
* killed half-way it resumes, neither redoing nor skipping a batch;
* a DELETE never shrinks the file and leaves no space reusable until VACUUM
  (`--vacuum`, one VACUUM after each batch, makes it reusable, and new rows fill it; one
  DELETE then VACUUM frees as much); a plain
  VACUUM gives back only the empty pages at the end; VACUUM FULL gives back the
  rest, asking for ACCESS EXCLUSIVE (pg_locks), but keeps a deleted row that an older
  open transaction could still see;
* `locktrace.RowLockWaits`, which the lab's verdicts read, sees an UPDATE waiting
  for a DELETE's transaction.
"""
import os
import pty
import signal
import subprocess
import time

import pytest
import sqlalchemy as sa

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
    kill_half_way(slow, lambda: progress(items)[0])
    last, top = progress(items)
    assert 0 < last < ROWS and top == ROWS
    # the progress and the batches committed together: done up to `last`, nothing after
    assert rows(items, "SELECT count(*) FROM items WHERE dst IS NOT NULL") == [(last,)]
    assert rows(items, "SELECT max(id) FROM items WHERE dst IS NOT NULL") == [(last,)]
    rows(items, "INSERT INTO items (src) VALUES (-1)")  # the app's, after the first run began

    proc = run_flask("backfill", "items", "dst", "src", "--batch", "500", timeout=120)
    assert proc.returncode == 0, proc.output
    assert f"done, {ROWS - last} rows set by this run, 1 left NULL" in proc.output, proc.output
    # no terminal: where it resumed, then one line for each tenth of the ids after it
    tenth = last * 10 // ROWS
    assert f"backfill items.dst: resumed at {tenth * 10}% of the ids" in proc.output, proc.output
    assert [line for line in proc.output.splitlines() if line.endswith("0% of the ids")
            and "resumed" not in line] == [f"backfill items.dst: {t * 10}% of the ids"
                                           for t in range(tenth + 1, 11)], proc.output
    assert rows(items, "SELECT count(*) FROM items WHERE id <= :n AND dst = src AND updates = 1",
                n=ROWS) == [(ROWS,)]
    assert rows(items, "SELECT dst, updates FROM items WHERE src = -1") == [(None, 0)]

    again = run_flask("backfill", "items", "dst", "src", timeout=120)  # nothing left to do
    assert "done, 0 rows set by this run" in again.output, again.output
    assert rows(items, "SELECT max(updates) FROM items") == [(1,)]


def on_a_terminal(env):
    """`flask backfill items dst src`'s output, on a pseudo-terminal as a cell's `!` runs it."""
    parent, child = pty.openpty()
    proc = subprocess.Popen(["flask", "backfill", "items", "dst", "src", "--batch", "2000",
                             "--restart"], env=env, stdin=child, stdout=child, stderr=child)
    os.close(child)
    output = b""
    try:
        while True:
            try:
                chunk = os.read(parent, 4096)
            except OSError:  # the terminal closed: the command ended
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(parent)
        proc.wait(60)
    return output.decode(errors="replace")


def test_a_terminal_gets_a_bar_and_a_kernel_the_lines(items, db_name):
    env = scenarios.environment(FLASK_APP="labapp", LABAPP_DATABASE=db_name, JPY_PARENT_PID=None)
    bar = on_a_terminal(env)
    assert "[####" in bar and "% of the ids" not in bar, bar
    lines = on_a_terminal({**env, "JPY_PARENT_PID": "1"})
    assert "[#" not in lines, lines
    assert [line.strip() for line in lines.splitlines() if "% of the ids" in line] == [
        f"backfill items.dst: {t * 10}% of the ids" for t in range(1, 11)], lines


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


# -- `flask batch-delete`: the same walk, to delete ---------------------------------------------

LOGGED = [  # each deleted row, with the transaction that deleted it
    "CREATE TABLE deleted (id int NOT NULL, xid bigint NOT NULL)",
    """CREATE FUNCTION items_log() RETURNS trigger AS $$
       BEGIN
           INSERT INTO deleted VALUES (OLD.id, txid_current());
           RETURN OLD;
       END $$ LANGUAGE plpgsql""",
    "CREATE TRIGGER items_log AFTER DELETE ON items FOR EACH ROW EXECUTE FUNCTION items_log()",
]


@pytest.fixture
def logged(items):
    for statement in LOGGED:
        rows(items, statement)
    return items


def delete_progress(url, condition):
    found = rows(url, "SELECT last_id, first_id, top FROM labapp.backfills WHERE name = :n",
                 n=f"delete items where {condition}") \
        if rows(url, "SELECT to_regclass('labapp.backfills')")[0][0] else []
    return found[0] if found else (None, None, None)


def test_batch_delete_deletes_exactly_the_matching_rows_one_transaction_a_batch(logged):
    condition = "src % 3 = 0 AND id > 1000"  # src = id * 7: every third id from 1002 on
    expected = {i for i in range(1, ROWS + 1) if i * 7 % 3 == 0 and i > 1000}
    proc = run_flask("batch-delete", "items", condition, "--batch", "1000", timeout=120)
    assert proc.returncode == 0, proc.output
    assert (f"batch-delete items: done, {len(expected)} rows deleted by this run,"
            f" 0 left where {condition}") in proc.output, proc.output
    assert [line for line in proc.output.splitlines() if line.endswith("% of the ids")] == [
        f"batch-delete items: {t * 10}% of the ids" for t in range(1, 11)], proc.output
    assert {i for (i,) in rows(logged, "SELECT id FROM deleted")} == expected
    assert rows(logged, "SELECT count(*) FROM deleted") == [(len(expected),)]  # each once
    assert rows(logged, "SELECT count(*) FROM items") == [(ROWS - len(expected),)]
    # it walked from the smallest matching id (1002: first 1001) to the largest, 1000 ids a
    # batch, and each batch was a transaction of its own, holding its rows' locks alone
    last, first, top = delete_progress(logged, condition)
    assert (first, top, last) == (min(expected) - 1, max(expected), max(expected))
    batches = rows(logged, "SELECT min(id), max(id) FROM deleted GROUP BY xid ORDER BY 1")
    ranges = [(first + k * 1000, first + (k + 1) * 1000) for k in range(-(-(top - first) // 1000))]
    assert len(batches) == len(ranges)
    assert all(low < lo and hi <= high for (lo, hi), (low, high) in zip(batches, ranges, strict=True))


def test_batch_delete_killed_half_way_resumes_without_redoing_or_skipping(logged, db_name):
    condition = "src % 2 = 0"
    env = scenarios.environment(FLASK_APP="labapp", LABAPP_DATABASE=db_name)
    slow = subprocess.Popen(["flask", "batch-delete", "items", condition, "--batch", "200",
                             "--pause", "0.02"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)
    kill_half_way(slow, lambda: delete_progress(logged, condition)[0] or 0)
    last, first, top = delete_progress(logged, condition)
    assert first < last < top == ROWS
    # the batches and the progress committed together: every even id up to `last` gone,
    # nothing after it
    assert rows(logged, "SELECT count(*), max(id) FROM deleted") == [(last // 2, last - last % 2)]
    rows(logged, "INSERT INTO items (src) VALUES (2)")  # the app's, after the first run began

    proc = run_flask("batch-delete", "items", condition, "--vacuum", timeout=120)
    assert proc.returncode == 0, proc.output
    assert (f"done, {ROWS // 2 - last // 2} rows deleted by this run, 1 left where {condition}"
            in proc.output), proc.output
    assert "batch-delete items: resumed at " in proc.output, proc.output
    assert rows(logged, "SELECT count(*), count(DISTINCT id) FROM deleted") == [(ROWS // 2,) * 2]
    assert rows(logged, "SELECT count(*) FROM items WHERE src % 2 = 0") == [(1,)]
    assert rows(logged, "SELECT count(*) FROM items WHERE src % 2 = 1") == [(ROWS // 2,)]


def test_batch_delete_with_vacuum_leaves_the_space_reusable_and_the_file_as_big(logged):
    rows(logged, "CREATE EXTENSION IF NOT EXISTS pg_freespacemap")
    rows(logged, "ALTER TABLE items SET (autovacuum_enabled = off)")
    reusable = "SELECT coalesce(sum(avail), 0) FROM pg_freespace('items')"
    size = "SELECT pg_relation_size('items')"
    before, free_before = rows(logged, size)[0][0], rows(logged, reusable)[0][0]
    plain = run_flask("batch-delete", "items", "id <= 5000", "--batch", "1000", timeout=120)
    assert plain.returncode == 0, plain.output
    assert rows(logged, size)[0][0] == before           # a DELETE never shrinks the file
    assert rows(logged, reusable)[0][0] == free_before  # and without VACUUM, nothing is reusable
    vacuums = "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'items'"
    vacuumed_before = rows(logged, vacuums)[0][0]
    vacuumed = run_flask("batch-delete", "items", "id <= 10000", "--batch", "1000", "--vacuum",
                         timeout=120)
    assert vacuumed.returncode == 0, vacuumed.output
    assert rows(logged, size)[0][0] == before
    # one VACUUM after each batch (ids 5001..10000 are 5 batches of 1000), and one at the end
    assert rows(logged, vacuums)[0][0] - vacuumed_before == 5 + 1
    # the space of the rows deleted with --vacuum (and the earlier ones) is reusable now
    assert rows(logged, reusable)[0][0] > before * 0.4
    rows(logged, "INSERT INTO items (src) SELECT i FROM generate_series(1, 5000) i")
    assert rows(logged, size)[0][0] == before           # the new rows went into that space


def test_batch_delete_bad_condition_is_one_line_and_deletes_nothing(logged):
    proc = run_flask("batch-delete", "items", "no_such_column = 1", timeout=120)
    assert proc.returncode == 1, proc.output
    errors = [line for line in proc.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "UndefinedColumn" in errors[0], proc.output
    assert "Traceback" not in proc.output
    assert rows(logged, "SELECT count(*) FROM items") == [(ROWS,)]


def test_row_lock_waits_sees_an_update_waiting_for_a_delete(items):
    """What lab 10's verdicts read: pg_locks' ungranted `transactionid` lock of a session
    that updates a row an open DELETE holds, behind that DELETE's one transaction."""
    import threading

    from labapp import locktrace
    from labapp.server import database

    engine = database.quick_engine(items)
    try:
        with locktrace.RowLockWaits(items, poll=0.005) as waits:
            with engine.connect() as deleting:
                deleting.begin()
                deleting.execute(sa.text("DELETE FROM items WHERE id <= 10"))
                editor = threading.Thread(target=rows, args=(
                    items, "UPDATE items SET dst = 1 WHERE id = 5"))
                editor.start()
                time.sleep(0.3)  # the editor waits meanwhile
                deleting.commit()
            editor.join(10)
    finally:
        engine.dispose()
    assert (waits.waiters, waits.transactions) == (1, 1)
    # by the server's clock: the editor began waiting after the DELETE's transaction began
    assert 0 < waits.longest < waits.ran < waits.seconds


def test_only_vacuum_full_gives_space_back_under_access_exclusive_and_plain_vacuum_the_tail(items):
    """Lab 10's words on size: one DELETE then VACUUM leaves the space reusable (the free
    space map) as the batches do; VACUUM gives back only empty pages at the end of the file;
    VACUUM FULL gives back the rest, and asks for ACCESS EXCLUSIVE (seen in pg_locks while it
    waits behind a reader's ACCESS SHARE)."""
    import threading

    from labapp.server import database

    size = "SELECT pg_relation_size('items')"
    rows(items, "CREATE EXTENSION IF NOT EXISTS pg_freespacemap")
    rows(items, "ALTER TABLE items SET (autovacuum_enabled = off)")  # only our VACUUMs
    reusable = "SELECT coalesce(sum(avail), 0) FROM pg_freespace('items')"
    full = rows(items, size)[0][0]
    rows(items, f"DELETE FROM items WHERE id <= {ROWS // 2}")  # the first half of the file
    assert rows(items, reusable)[0][0] < full * 0.1      # one DELETE: nothing reusable yet
    vacuum = database.quick_engine(items).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with vacuum.connect() as conn:
            conn.execute(sa.text("VACUUM items"))
            assert rows(items, size)[0][0] == full       # freed inside, not given back
            # but reusable: one DELETE then VACUUM frees as much as the batches with --vacuum
            assert rows(items, reusable)[0][0] > full * 0.4
            conn.execute(sa.text(f"DELETE FROM items WHERE id > {ROWS * 3 // 4}"))
            conn.execute(sa.text("VACUUM items"))
            tail = rows(items, size)[0][0]
            assert tail < full * 0.8                     # the empty pages at the end: given back
        reader = database.quick_engine(items)
        with reader.connect() as holding:
            holding.begin()
            holding.execute(sa.text("LOCK TABLE items IN ACCESS SHARE MODE"))
            def vacuum_full():
                with vacuum.connect() as conn:
                    conn.execute(sa.text("VACUUM FULL items"))

            job = threading.Thread(target=vacuum_full)
            job.start()
            asked = []
            for _ in range(400):
                asked = rows(items, "SELECT mode FROM pg_locks WHERE relation = 'items'::regclass"
                                    " AND NOT granted")
                if asked:
                    break
                time.sleep(0.025)
            holding.commit()
        job.join(60)
        reader.dispose()
    finally:
        vacuum.engine.dispose()
    assert asked == [("AccessExclusiveLock",)]
    assert rows(items, size)[0][0] < tail                # the rest, given back


def kill_half_way(slow, done):
    """SIGKILL the command `slow` once `done()` (its rows so far) passes half of ROWS."""
    try:
        deadline = time.monotonic() + 120
        while done() < ROWS // 2 and slow.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert slow.poll() is None, "it finished before it could be killed half-way"
        slow.send_signal(signal.SIGKILL)
        slow.wait(10)
    finally:
        if slow.poll() is None:
            slow.kill()
            slow.wait(10)


def test_vacuum_full_keeps_the_dead_rows_an_open_transaction_could_still_see(items):
    """Lab 10's reason to measure the batched delete from its own compact file: VACUUM
    FULL copies a deleted row that a transaction older than the DELETE could still see
    (that it gives back the rest: the test above)."""
    from labapp.server import database

    size = "SELECT pg_relation_size('items')"
    rows(items, "ALTER TABLE items SET (autovacuum_enabled = off)")  # only our VACUUMs
    before = rows(items, size)[0][0]
    vacuum = database.quick_engine(items).execution_options(isolation_level="AUTOCOMMIT")
    older = database.quick_engine(items).execution_options(isolation_level="REPEATABLE READ")
    try:
        with older.connect() as snapshot:
            snapshot.execute(sa.text("SELECT 1"))  # its snapshot, from here (no lock on items)
            rows(items, f"DELETE FROM items WHERE id <= {ROWS // 2}")
            with vacuum.connect() as conn:
                conn.execute(sa.text("VACUUM FULL items"))
            # the new file holds the deleted half: that snapshot still reads every row
            assert snapshot.execute(sa.text("SELECT count(*) FROM items")).scalar() == ROWS
            snapshot.rollback()
    finally:
        vacuum.engine.dispose()
        older.engine.dispose()
    assert rows(items, "SELECT count(*) FROM items")[0][0] == ROWS // 2
    assert rows(items, size)[0][0] > before * 0.9
