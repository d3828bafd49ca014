"""Lab 08's rename: the claims its prose makes about its migrations, on the real
server, with its own revisions (tests/chains/lab08.patch).

* Autogenerate's revision for the rename drops `title` and adds `name NOT NULL`:
  on a table with rows it fails and rolls back; made nullable, `name` is empty.
* The backfill walks the primary key in id ranges: each row is read about once.
  The loop the lab used to ship, `WHERE id IN (SELECT id FROM deals WHERE name
  IS NULL ORDER BY id LIMIT n)`, reads past the rows it has already filled on
  every batch (quadratic).
* Shipped with the expand in one `flask db upgrade`, the backfill's
  `autocommit_block()` still ends the expand's transaction (and its lock) first.
  `transaction_per_migration=True` commits each revision too, but one `UPDATE`
  keeps a lock on every row it changed until it ends.
* A `NOT VALID` check holds for new and updated rows, not for those already there.
* `SET NOT NULL` after a validated `CHECK (col IS NOT NULL)` skips its own scan
  (PostgreSQL says so at DEBUG1); without the check it reads the table. The
  shorter `NOT NULL ... NOT VALID` exists from PostgreSQL 18 only.
* The contract's way back creates the trigger (and the check) before its
  backfill: under a release's inserts, and its updates of rows the backfill has
  not reached (the trigger fills the empty column when neither changes), every
  deal gets its title. In the other order, the inserts between the backfill and
  the trigger fail.
* Run again over its own work (env.py's retry after a lock timeout), the
  contract finds each step done, both ways.
* `lock_timeout` is set for the session, so it holds in the backfill's committed
  batches too; env.py retries the revision from its start, and the batches that
  committed before the timeout are done already. A lock held through all 15
  attempts (a vacuum's) fails the migration, which leaves nothing behind.
"""
import contextlib
import subprocess
import threading
import time
import types

import pytest
import sqlalchemy as sa

from helpers import BIN, flask_in, postgres_only, rows
from labapp.live import locktrace
from labapp.server import database
from tools import scenarios

pytestmark = [postgres_only,
              pytest.mark.filterwarnings("ignore:'get_engine' is deprecated:DeprecationWarning")]

DEALS = 20_000
BATCH = 1_000
VERSIONS = "migrations/versions"
ID_RANGES = "UPDATE deals SET name = title WHERE id > :last AND id <= :last + :n AND name IS NULL"
OLD = ("UPDATE deals SET name = title WHERE id IN"
       " (SELECT id FROM deals WHERE name IS NULL ORDER BY id LIMIT :n)")


def with_deals(ws, url, revision):
    """The chain at `revision`, with the sample rows and DEALS more deals from before it."""
    flask_in(ws, "db", "upgrade", "0001", check=True)
    flask_in(ws, "loaddata", check=True)
    rows(url, "INSERT INTO deals (contact_id, title, amount, currency)"
              " SELECT 1 + i % 6, 'Deal ' || i, i, 'USD' FROM generate_series(1, :n) i", n=DEALS)
    flask_in(ws, "db", "upgrade", revision, check=True)
    return ws


def test_autogenerates_rename_loses_the_titles_and_its_not_null_fails_on_rows(chain, db_url):
    """Section 2: autogenerate writes a drop and an add. As it comes, its `name NOT
    NULL` fails on a table with rows, and the revision rolls back; made nullable, it
    runs, and every title is gone for an empty name."""
    ws = with_deals(chain("lab08"), db_url, "0001")
    for later in ("0002", "0003", "0004"):
        next((ws / VERSIONS).glob(f"{later}_*.py")).unlink()
    flask_in(ws, "db", "migrate", "-m", "rename deal title", "--rev-id", "0002", check=True)
    revision = ws / VERSIONS / "0002_rename_deal_title.py"
    text = revision.read_text()
    added = "add_column(sa.Column('name', sa.String(length=200), nullable=False))"
    assert added in text and "drop_column('title')" in text, text

    proc = flask_in(ws, "db", "upgrade", env={"LABAPP_DEBUG": "1"})
    assert proc.returncode != 0
    assert 'column "name" of relation "deals" contains null values' in proc.output, proc.output
    assert rows(db_url, "SELECT version_num FROM alembic_version") == [("0001",)]
    assert rows(db_url, "SELECT count(title) FROM deals") == [(DEALS + 10,)]  # rolled back

    revision.write_text(text.replace(added, added.replace("nullable=False", "nullable=True")))
    flask_in(ws, "db", "upgrade", check=True)
    assert rows(db_url, "SELECT count(*), count(name) FROM deals") == [(DEALS + 10, 0)]
    assert rows(db_url, "SELECT count(*) FROM information_schema.columns"
                        " WHERE table_name = 'deals' AND column_name = 'title'") == [(0,)]


def rows_read(plan):
    """Rows the scans of `deals` in an EXPLAIN (ANALYZE, FORMAT JSON) plan read:
    those they returned and those their filter threw away, times their loops."""
    found = 0
    if plan.get("Relation Name") == "deals" and plan["Node Type"] != "Bitmap Index Scan":
        kept = plan["Actual Rows"] + plan.get("Rows Removed by Filter", 0) \
            + plan.get("Rows Removed by Index Recheck", 0)
        found += kept * plan["Actual Loops"]
    return found + sum(rows_read(child) for child in plan.get("Plans", []))


def backfill_reads(conn, statement):
    """Run `statement` batch after batch (each committed) until no name is left
    NULL; how many rows its scans of deals read in all."""
    total, last = 0, 0
    while conn.execute(sa.text("SELECT count(*) FROM deals WHERE name IS NULL")).scalar():
        plan = conn.execute(sa.text(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}"),
                            {"last": last, "n": BATCH}).scalar()[0]["Plan"]
        total += rows_read(plan)
        last += BATCH
    return total


def test_the_id_range_backfill_reads_each_row_once_the_old_one_its_filled_rows_again(chain, db_url):
    ws = with_deals(chain("lab08"), db_url, "0002")
    revision = (ws / VERSIONS / "0003_backfill_deal_name.py").read_text()
    assert ID_RANGES.partition(" WHERE")[2] in revision and "IN (SELECT" not in revision, revision
    engine = database.quick_engine(db_url).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SET max_parallel_workers_per_gather = 0"))  # one scan, one count
            conn.execute(sa.text("ANALYZE deals"))
            ranges = backfill_reads(conn, ID_RANGES)
            conn.execute(sa.text("ALTER TABLE deals DISABLE TRIGGER deals_title_name_sync"))
            conn.execute(sa.text("UPDATE deals SET name = NULL"))
            conn.execute(sa.text("ALTER TABLE deals ENABLE TRIGGER deals_title_name_sync"))
            conn.execute(sa.text("VACUUM ANALYZE deals"))
            old = backfill_reads(conn, OLD)
    finally:
        engine.dispose()
    total = DEALS + 10
    assert ranges <= total * 1.05, ranges
    # batch k steps over the k - 1 batches it filled before: about total² / (2 BATCH) in all
    assert old >= total * total / (2 * BATCH), (old, ranges)


@contextlib.contextmanager
def debug_notices(url):
    """A raw autocommit connection that collects the server's DEBUG1 messages."""
    engine = database.quick_engine(url)
    connection = engine.raw_connection()
    try:
        connection.dbapi_connection.autocommit = True
        cursor = connection.cursor()
        cursor.execute("SET client_min_messages = debug1")
        yield cursor, connection.dbapi_connection.notices
    finally:
        connection.close()
        engine.dispose()


def test_set_not_null_skips_its_scan_after_a_validated_check(db_url):
    with debug_notices(db_url) as (cursor, notices):
        cursor.execute("CREATE TABLE t (id int PRIMARY KEY, x text);"
                       "INSERT INTO t SELECT i, 'x' FROM generate_series(1, 1000) i")
        notices.clear()
        cursor.execute("ALTER TABLE t ALTER COLUMN x SET NOT NULL")
        assert any('verifying table "t"' in n for n in notices), notices
        cursor.execute("ALTER TABLE t ALTER COLUMN x DROP NOT NULL")
        cursor.execute("ALTER TABLE t ADD CONSTRAINT t_x_not_null CHECK (x IS NOT NULL) NOT VALID")
        cursor.execute("ALTER TABLE t VALIDATE CONSTRAINT t_x_not_null")
        notices.clear()
        cursor.execute("ALTER TABLE t ALTER COLUMN x SET NOT NULL")
        assert any("sufficient to prove that it does not contain nulls" in n for n in notices), notices
        assert not any("verifying table" in n for n in notices), notices


def test_postgresql_18_has_not_null_not_valid_and_15_has_not(db_url):
    """Why the lab uses CHECK (col IS NOT NULL) NOT VALID: the shorter form is PostgreSQL 18's."""
    with debug_notices(db_url) as (cursor, _):
        cursor.execute("SHOW server_version_num")
        version = int(cursor.fetchone()[0])
        cursor.execute("CREATE TABLE t (x text)")
        try:
            cursor.execute("ALTER TABLE t ADD CONSTRAINT t_x_not_null NOT NULL x NOT VALID")
            accepted = True
        except Exception as exc:  # psycopg2's SyntaxError on 15
            assert "syntax error" in str(exc), exc
            accepted = False
    assert accepted == (version >= 180000), version


def test_a_not_valid_check_holds_new_and_updated_rows_not_those_already_there(db_url):
    """Why the way back needs the trigger to fill `title` on an update that writes
    neither column: a NOT VALID check skips the existing rows, not their updates."""
    with debug_notices(db_url) as (cursor, _):
        cursor.execute("CREATE TABLE t (id int PRIMARY KEY, x text, n int);"
                       "INSERT INTO t VALUES (1, NULL, 0), (2, NULL, 0);"
                       "ALTER TABLE t ADD CONSTRAINT t_x_check CHECK (x IS NOT NULL) NOT VALID")
        for statement in ("INSERT INTO t VALUES (3, NULL, 0)", "UPDATE t SET n = n + 1 WHERE id = 1"):
            with pytest.raises(Exception, match="t_x_check"):
                cursor.execute(statement)
        cursor.execute("UPDATE t SET n = n + 1, x = 'filled' WHERE id = 1")
        cursor.execute("SELECT id FROM t WHERE x IS NULL")
        assert cursor.fetchall() == [(2,)]  # the row never touched is still there, unchecked


def test_an_autocommit_block_ends_the_expands_lock_before_the_first_batch(chain, db_url, tmp_path):
    """Expand and backfill in one `flask db upgrade`: 0003's autocommit_block() commits
    the expand's transaction first, so its ACCESS EXCLUSIVE ends before any batch runs."""
    ws = with_deals(chain("lab08"), db_url, "0001")
    flask_in(ws, "trace", "upgrade", "0003", "--quiet", "--save", str(tmp_path / "trace.json"), check=True)
    trace = locktrace.load(tmp_path / "trace.json")
    expand = [lock for step in trace.steps for lock in step.locks if lock.mode == "ACCESS EXCLUSIVE"]
    batches = [step for step in trace.steps if step.sql.startswith("UPDATE deals")]
    assert expand and len(batches) == -(-(DEALS + 10) // 5000)
    assert max(lock.end for lock in expand) <= min(step.start for step in batches)
    assert {step.transaction for step in batches} == {None}  # tx auto: each its own


ONE_UPDATE = '''"""backfill deals.name

Revision ID: 0003
Revises: 0002
"""
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade():
    op.execute("UPDATE deals SET name = title WHERE name IS NULL")


def downgrade():
    pass
'''
PER_MIGRATION_APP = '''from flask_migrate import Migrate

from labapp import create_app, db

app = create_app(models="models")
Migrate(app, db, transaction_per_migration=True)  # a transaction for each revision
'''


def test_a_transaction_per_revision_ends_the_expands_lock_not_the_updates_row_locks(chain, db_url, tmp_path):
    """The key points: `Migrate(app, db, transaction_per_migration=True)` commits each
    revision, so the expand's ACCESS EXCLUSIVE ends before the one-`UPDATE` backfill
    begins; but that UPDATE still locks every row it changes until it ends: the app's
    update of one of them waits for it, its read does not."""
    ws = with_deals(chain("lab08"), db_url, "0001")
    (ws / VERSIONS / "0003_backfill_deal_name.py").write_text(ONE_UPDATE)
    (ws / "app.py").write_text(PER_MIGRATION_APP)
    flask_in(ws, "trace", "upgrade", "0003", "--quiet", "--save", str(tmp_path / "trace.json"), check=True)
    trace = locktrace.load(tmp_path / "trace.json")
    expand = [lock for step in trace.steps for lock in step.locks if lock.mode == "ACCESS EXCLUSIVE"]
    update = next(step for step in trace.steps if step.sql.startswith("UPDATE deals"))
    alter = next(step for step in trace.steps if step.sql.startswith("ALTER TABLE deals ADD COLUMN"))
    assert expand and max(lock.end for lock in expand) <= update.start
    assert update.transaction not in (None, alter.transaction)

    engine = database.quick_engine(db_url)
    try:
        with engine.connect() as migration, engine.connect() as app:
            migration.execute(sa.text("UPDATE deals SET name = title"))  # the backfill, not yet ended
            app.execute(sa.text("SET lock_timeout = '200ms'"))
            assert app.execute(sa.text("SELECT title FROM deals WHERE id = 17")).scalar()
            with pytest.raises(sa.exc.OperationalError, match="lock timeout"):
                app.execute(sa.text("UPDATE deals SET amount = amount + 1 WHERE id = 17"))
            app.rollback()
            migration.commit()
            app.execute(sa.text("UPDATE deals SET amount = amount + 1 WHERE id = 17"))  # now it goes
            app.commit()
    finally:
        engine.dispose()


@contextlib.contextmanager
def writing(url, statement):
    """A release's writes: `statement` (with RETURNING) every 2 ms, each committed,
    until the block ends; yields what happened: .done (what each returned),
    .failed (error messages)."""
    engine = database.quick_engine(url).execution_options(isolation_level="AUTOCOMMIT")
    done, seen = threading.Event(), types.SimpleNamespace(done=[], failed=[])

    def run():
        with engine.connect() as conn:
            while not done.is_set():
                try:
                    seen.done.append(conn.execute(sa.text(statement)).scalar())
                except sa.exc.DBAPIError as exc:
                    seen.failed.append(str(exc.orig))
                time.sleep(0.002)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        time.sleep(0.05)
        yield seen
    finally:
        done.set()
        thread.join(10)
        engine.dispose()


def v2_inserting(url):
    """v2 writes `name` only: a new deal every 2 ms."""
    return writing(url, "INSERT INTO deals (contact_id, name, amount, currency)"
                        " VALUES (1, 'v2 deal', 1, 'USD') RETURNING id")


def v2_updating(url, deal):
    """v2 changes the amount of one deal every 2 ms: neither its title nor its name."""
    return writing(url, f"UPDATE deals SET amount = amount + 1 WHERE id = {deal} RETURNING id")


TRIGGER_FIRST = '    keep_in_step()\n    check("title")\n    backfill("title", "name")\n'
TRIGGER_LAST = '    check("title")\n    backfill("title", "name")\n    keep_in_step()\n'


def test_the_way_back_creates_the_trigger_before_its_backfill(chain, db_url):
    ws = with_deals(chain("lab08"), db_url, "head")
    contract = ws / VERSIONS / "0004_contract_deal_title.py"
    source = contract.read_text()
    assert source.count(TRIGGER_FIRST) == 1, "0004's downgrade: the trigger, the check, then the backfill"

    last = rows(db_url, "SELECT max(id) FROM deals")[0][0]  # the backfill's last batch reaches it
    with v2_inserting(db_url) as v2, v2_updating(db_url, last) as updates:
        proc = flask_in(ws, "db", "downgrade", "0003")
    assert proc.returncode == 0, proc.output
    assert "backfill: done, 0 deals without a title" in proc.output
    assert len(v2.done) > 10 and v2.failed == []
    # an update that writes neither column, on a row the backfill had not reached: the
    # trigger fills its title, or the NOT VALID check would refuse the update
    assert len(updates.done) > 10 and updates.failed == [], updates.failed[:3]
    assert rows(db_url, "SELECT count(*) FROM deals WHERE title IS NULL") == [(0,)]
    assert rows(db_url, "SELECT is_nullable FROM information_schema.columns"
                        " WHERE table_name = 'deals' AND column_name = 'title'") == [("NO",)]

    # the other way round: the deals v2 writes between the backfill and the trigger
    flask_in(ws, "db", "upgrade", "head", check=True)
    contract.write_text(source.replace(TRIGGER_FIRST, TRIGGER_LAST))
    with v2_inserting(db_url) as v2:
        flask_in(ws, "db", "downgrade", "0003", check=True)
    assert v2.failed and all("deals_title_check" in message for message in v2.failed), v2.failed


def test_the_contract_runs_again_over_its_own_work_both_ways(chain, db_url):
    """env.py runs a revision again from its first line after a lock timeout, over
    whatever its autocommit steps committed: every step finds its work done."""
    ws = with_deals(chain("lab08"), db_url, "head")
    rows(db_url, "UPDATE alembic_version SET version_num = '0003'")
    flask_in(ws, "db", "upgrade", "head", check=True)
    flask_in(ws, "db", "downgrade", "0003", check=True)
    rows(db_url, "UPDATE alembic_version SET version_num = '0004'")
    flask_in(ws, "db", "downgrade", "0003", check=True)
    assert rows(db_url, "SELECT column_name, is_nullable FROM information_schema.columns"
                        " WHERE table_name = 'deals' AND column_name IN ('title', 'name')"
                        " ORDER BY 1") == [("name", "YES"), ("title", "NO")]
    assert rows(db_url, "SELECT count(*) FROM pg_trigger WHERE tgname = 'deals_title_name_sync'") == [(1,)]
    assert rows(db_url, "SELECT conname FROM pg_constraint WHERE conrelid = 'deals'::regclass"
                        " AND contype = 'c'") == []


def test_a_lock_timeout_in_a_backfill_batch_is_retried_and_the_committed_batches_stay(chain, db_url):
    """A row the backfill must update is locked by another transaction: the batch
    gives up after lock_timeout (set once for the session, it holds outside the
    transaction too), the batches before it stay committed, env.py runs the
    revision again, and it finishes once the row is free."""
    ws = with_deals(chain("lab08"), db_url, "0002")
    engine = database.quick_engine(db_url)
    try:
        with engine.connect() as holder:
            holder.execute(sa.text("SELECT id FROM deals WHERE id = 17000 FOR UPDATE"))
            proc = subprocess.Popen([str(BIN / "flask"), "db", "upgrade", "0003"], cwd=ws,
                                    env=scenarios.environment(FLASK_APP=None),  # the workspace's app.py
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and rows(
                    db_url, "SELECT count(*) FROM deals WHERE name IS NOT NULL") != [(15000,)]:
                time.sleep(0.05)
            time.sleep(0.5)  # a few attempts, each stopped at the locked row
            filled = rows(db_url, "SELECT count(*) FROM deals WHERE name IS NOT NULL")
            holder.rollback()
        output, _ = proc.communicate(timeout=60)
    finally:
        engine.dispose()
    assert filled == [(15000,)], output  # ids 1-15000: three batches, committed
    assert proc.returncode == 0, output
    assert "a lock is busy: retrying" in output and "free on a later attempt" in output, output
    assert "backfill: done, 0 deals without a name" in output, output
    assert rows(db_url, "SELECT version_num FROM alembic_version") == [("0003",)]


def test_a_vacuums_lock_held_through_every_attempt_fails_the_migration_and_leaves_nothing(chain, db_url):
    """Section 1: a vacuum holds SHARE UPDATE EXCLUSIVE, which the expand's ACCESS
    EXCLUSIVE waits for. Held longer than env.py's 15 attempts (about 14 s), the
    upgrade fails, with nothing of it left; run again once the lock is gone, it works."""
    ws = with_deals(chain("lab08"), db_url, "0001")
    engine = database.quick_engine(db_url)
    try:
        with engine.connect() as vacuum:  # what VACUUM holds, for as long as it runs
            vacuum.execute(sa.text("LOCK TABLE deals IN SHARE UPDATE EXCLUSIVE MODE"))
            started = time.monotonic()
            proc = flask_in(ws, "db", "upgrade", "0002", env={"LABAPP_DEBUG": "1"})
            took = time.monotonic() - started
            vacuum.rollback()
    finally:
        engine.dispose()
    assert proc.returncode != 0 and "a lock is busy: retrying, 15 attempts at most" in proc.output
    assert "LockNotAvailable" in proc.output and took >= 12.4, (took, proc.output[-2000:])
    assert rows(db_url, "SELECT version_num FROM alembic_version") == [("0001",)]
    assert rows(db_url, "SELECT count(*) FROM information_schema.columns"
                        " WHERE table_name = 'deals' AND column_name = 'name'") == [(0,)]
    flask_in(ws, "db", "upgrade", "0002", check=True)
    assert rows(db_url, "SELECT version_num FROM alembic_version") == [("0002",)]
