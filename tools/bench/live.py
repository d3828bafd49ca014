"""What users feel: labs 07, 08 and 10's scenarios under live traffic (the app on waitress,
the load generator), each the naive way and the safe way: failed requests, the
slowest request, and their ratio. Targets (issue 13): safe = 0 failed and p99 <=
3x the baseline's; naive: the stall or the failures show plainly."""
import subprocess
import time
import types

import sqlalchemy as sa

from labapp.commands import backfill
from labapp.live import appserver, traffic
from labapp.runtime import labs, workspace
from tools import scenarios
from tools.bench.measure import child_env, scratch_database

LIVE_ROWS = 1_000_000  # deals in the scratch database: the enum swap and the index need them
REPORT_S = 3.0         # the long report transaction of the lock-queue scenario

# lab 08's expand: deals.name kept in step with deals.title by a trigger; its batched backfill
SYNC_SQL = """CREATE FUNCTION deals_title_name_sync() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.name := COALESCE(NEW.name, NEW.title);
        NEW.title := COALESCE(NEW.title, NEW.name);
    ELSIF NEW.title IS DISTINCT FROM OLD.title THEN
        NEW.name := NEW.title;
    ELSIF NEW.name IS DISTINCT FROM OLD.name THEN
        NEW.title := NEW.name;
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql"""
SYNC_TRIGGER = """CREATE TRIGGER deals_title_name_sync BEFORE INSERT OR UPDATE ON deals
    FOR EACH ROW EXECUTE FUNCTION deals_title_name_sync()"""
BACKFILL_SQL = """UPDATE deals SET name = title WHERE id IN
    (SELECT id FROM deals WHERE name IS NULL ORDER BY id LIMIT 5000)"""

# lab 10: deals.id to bigint by expand/contract: a new column kept in step by a trigger, a
# keyset backfill in committed batches, its unique index and NOT NULL built without a long
# lock, then the swap in one short transaction (the sequence follows the new column)
ID_SYNC_SQL = """CREATE FUNCTION deals_id_big_sync() RETURNS trigger AS $$
BEGIN
    NEW.id_big := NEW.id;
    RETURN NEW;
END $$ LANGUAGE plpgsql"""
ID_SYNC_TRIGGER = """CREATE TRIGGER deals_id_big_sync BEFORE INSERT OR UPDATE ON deals
    FOR EACH ROW EXECUTE FUNCTION deals_id_big_sync()"""
ID_SWAP = [
    "ALTER TABLE deals ALTER COLUMN id_big SET NOT NULL",  # the valid check spares the scan
    "ALTER TABLE deals DROP CONSTRAINT deals_id_big_not_null",
    "ALTER TABLE deals DROP CONSTRAINT deals_pkey",
    "ALTER TABLE deals ADD CONSTRAINT deals_pkey PRIMARY KEY USING INDEX deals_id_big_key",
    "ALTER SEQUENCE deals_id_seq AS bigint OWNED BY deals.id_big",  # before id goes: it owned it
    "ALTER TABLE deals ALTER COLUMN id_big SET DEFAULT nextval('deals_id_seq')",
    "DROP TRIGGER deals_id_big_sync ON deals",
    "DROP FUNCTION deals_id_big_sync()",
    "ALTER TABLE deals DROP COLUMN id",
    "ALTER TABLE deals RENAME COLUMN id_big TO id",
]


def _bigint_expand_contract(url, batch=20_000, pause=0.01):
    _plain(url, ["ALTER TABLE deals ADD COLUMN id_big bigint", ID_SYNC_SQL, ID_SYNC_TRIGGER])
    top, last = _scalar(url, "SELECT max(id) FROM deals"), 0
    while last < top:  # keyset: each batch its own transaction, each row read once
        _plain(url, [f"UPDATE deals SET id_big = id WHERE id > {last} AND id <= {last + batch}"
                     " AND id_big IS NULL"], autocommit=True)
        last += batch
        time.sleep(pause)
    _plain(url, ["CREATE UNIQUE INDEX CONCURRENTLY deals_id_big_key ON deals (id_big)",
                 "ALTER TABLE deals ADD CONSTRAINT deals_id_big_not_null"
                 " CHECK (id_big IS NOT NULL) NOT VALID",
                 "ALTER TABLE deals VALIDATE CONSTRAINT deals_id_big_not_null"], autocommit=True)
    _retrying(url, ID_SWAP)


def _scalar(url, query):
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql(query).scalar()
    finally:
        engine.dispose()


def _retrying(url, statements, lock_timeout="50ms", attempts=20):
    """Lab 07's env.py recipe: lock_timeout, and retries with backoff."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        for attempt in range(1, attempts + 1):
            try:
                with engine.begin() as conn:
                    conn.exec_driver_sql(f"SET lock_timeout = '{lock_timeout}'")
                    for statement in statements:
                        conn.exec_driver_sql(statement)
                return
            except sa.exc.OperationalError as exc:
                if getattr(exc.orig, "pgcode", None) != "55P03" or attempt == attempts:
                    raise
            time.sleep(min(0.1 * 2 ** attempt, 1.0))
    finally:
        engine.dispose()


def _plain(url, statements, autocommit=False):
    """Run `statements` (one transaction, or each on its own); the last one's rowcount."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool,
                              **({"isolation_level": "AUTOCOMMIT"} if autocommit else {}))
    try:
        with engine.begin() as conn:
            for statement in statements:
                count = conn.exec_driver_sql(statement).rowcount
        return count
    finally:
        engine.dispose()


def _measure(urls, migrate, mix=None, report_s=None, db_url=None, after=None):
    """One load across a migration: 0.5 s before, the migration, 0.5 s after
    (`after(load)` runs then: a deploy's switch)."""
    with traffic.Load(*urls, mix=mix or traffic.READS, clients=4) as load:
        load.wait(0.5)
        if report_s:
            with traffic.long_report(load, db_url, report_s):
                load.wait(0.2)
                with load.mark("migration"):
                    migrate()
        else:
            with load.mark("migration"):
                migrate()
        if after:
            after(load)
        load.wait(0.5)
    return load.report


def bench_live(table, tmp):
    """Each scenario of labs 07, 08 and 10 once the naive way and once the safe way,
    under the same traffic on the real app (waitress)."""
    with scratch_database("bench_live") as (name, url):
        spec = labs.LabSpec("benchlive", "-", "-", migrations=True, data=True)
        lab = types.SimpleNamespace(workspace=workspace.build(tmp / "live", spec))
        try:
            baseline, results = _scenarios(lab, url, child_env(LABAPP_DATABASE=name))
        finally:
            appserver.stop_all(lab.workspace)

    table.row("live: baseline traffic (4 clients, reads)", baseline.p99,
              f"p99; {len(baseline.requests)} requests, max {baseline.max * 1000:.0f} ms")
    for what, naive, safe in results:
        ratio = naive.max / safe.max if safe.max else float("inf")
        within = safe.failures == 0 and safe.p99 <= 3 * baseline.p99
        table.row(f"live: {what}", f"{ratio:.1f}x",
                  f"max latency naive/safe; naive {naive.failures} failed, max {naive.max * 1000:.0f} ms;"
                  f" safe {safe.failures} failed, max {safe.max * 1000:.0f} ms,"
                  f" p99 {safe.p99 / baseline.p99:.1f}x baseline"
                  f" ({'target holds' if within else 'target missed'})")


def _scenarios(lab, url, env):
    """The baseline's report, and (what, naive report, safe report) for each scenario."""
    for args in (["db", "upgrade"], ["loaddata"]):
        subprocess.run(["flask", *args], cwd=lab.workspace, env=env, check=True, capture_output=True)
    _plain(url, [f"""INSERT INTO deals (contact_id, title, amount, currency)
                     SELECT 1 + mod(i, 6), 'Deal ' || i, mod(i, 5000), 'USD'
                     FROM generate_series(1, {LIVE_ROWS}) i""", "ANALYZE deals"])
    appserver.release(lab, "v1")
    models = lab.workspace / "models.py"
    models.write_text(models.read_text().replace("    GBP = 3\n", "    GBP = 3\n    BTC = 4\n"))
    appserver.release(lab, "v2")
    v1, v2 = appserver.start(lab, "v1"), appserver.start(lab, "v2")

    with traffic.Load(v1.url) as load:
        load.wait(2)
    baseline = load.report
    results = []

    # deploy order: v2 (knows BTC) serves before the migration vs after it
    naive = _measure([v2.url], lambda: None, mix=traffic.sales("BTC"))
    safe = _measure([v1.url], lambda: _plain(
        url, ["ALTER TYPE dealcurrency ADD VALUE IF NOT EXISTS 'BTC'"], autocommit=True),
        mix=traffic.sales("GBP"),
        after=lambda load: load.route(v2.url, mix=traffic.sales("BTC")) or load.wait(1))
    results.append(("deploy order: code first / schema first", naive, safe))

    # the lock queue: an instant ALTER behind a long report, plain vs lock_timeout + retries
    alter = ["ALTER TABLE deals ADD COLUMN note text"]
    naive = _measure([v2.url], lambda: _plain(url, alter), report_s=REPORT_S, db_url=url)
    _plain(url, ["ALTER TABLE deals DROP COLUMN note"])
    safe = _measure([v2.url], lambda: _retrying(url, alter), report_s=REPORT_S, db_url=url)
    results.append((f"lock queue ({REPORT_S:.0f} s report): plain / lock_timeout+retries", naive, safe))

    # an enum label at 1M rows: lab 04's temporary-type swap (adding JPY) vs ADD VALUE
    swap = scenarios.swap_through_temporary_type(["USD", "EUR", "AED", "GBP", "BTC", "JPY"])
    naive = _measure([v2.url], lambda: _plain(url, swap))
    safe = _measure([v2.url], lambda: _plain(
        url, ["ALTER TYPE dealcurrency ADD VALUE IF NOT EXISTS 'XRP'"], autocommit=True))
    results.append((f"enum label, {LIVE_ROWS // 1000}k rows: swap / ADD VALUE", naive, safe))

    # an index at 1M rows under writes: CREATE INDEX vs CONCURRENTLY
    writes = traffic.sales("USD", every=2)
    naive = _measure([v2.url], lambda: _plain(
        url, ["CREATE INDEX ix_bench_amount ON deals (amount)"]), mix=writes)
    _plain(url, ["DROP INDEX ix_bench_amount"])
    safe = _measure([v2.url], lambda: _plain(
        url, ["CREATE INDEX CONCURRENTLY ix_bench_amount ON deals (amount)"],
        autocommit=True), mix=writes)
    results.append((f"index, {LIVE_ROWS // 1000}k rows: plain / CONCURRENTLY", naive, safe))

    # lab 10: a foreign key at 1M rows under writes: plain vs NOT VALID, then VALIDATE
    fk = ("ALTER TABLE deals ADD CONSTRAINT deals_contact_id_fkey"
          " FOREIGN KEY (contact_id) REFERENCES contacts (id)")
    unfk = "ALTER TABLE deals DROP CONSTRAINT deals_contact_id_fkey"
    _plain(url, [unfk])
    naive = _measure([v2.url], lambda: _plain(url, [fk]), mix=writes)
    _plain(url, [unfk])
    safe = _measure([v2.url], lambda: (
        _plain(url, [fk + " NOT VALID"]),
        _plain(url, ["ALTER TABLE deals VALIDATE CONSTRAINT deals_contact_id_fkey"], autocommit=True)),
        mix=writes)
    results.append((f"foreign key, {LIVE_ROWS // 1000}k rows: plain / NOT VALID + VALIDATE",
                    naive, safe))

    # lab 10: deals.id integer -> bigint at 1M rows: one ALTER (a rewrite) vs expand/contract
    naive = _measure([v2.url], lambda: _plain(
        url, ["ALTER TABLE deals ALTER COLUMN id TYPE bigint"]), mix=writes)
    _plain(url, ["ALTER TABLE deals ALTER COLUMN id TYPE integer"])
    safe = _measure([v2.url], lambda: _bigint_expand_contract(url), mix=writes)
    results.append((f"integer -> bigint, {LIVE_ROWS // 1000}k rows: ALTER TYPE / expand-contract",
                    naive, safe))
    if _scalar(url, "SELECT data_type FROM information_schema.columns"
                    " WHERE table_name = 'deals' AND column_name = 'id'") != "bigint":
        raise RuntimeError("the expand/contract left deals.id as it was")

    # lab 10's `flask backfill` at 1M rows under writes: big batches with no pause / small
    # batches with pauses (the app's p99 beside the baseline's)
    _plain(url, ["ALTER TABLE deals ADD COLUMN fill_a integer",
                 "ALTER TABLE deals ADD COLUMN fill_b integer"])
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        naive = _measure([v2.url], lambda: backfill.run(
            engine, "deals", "fill_a", "contact_id", batch=50_000), mix=writes)
        safe = _measure([v2.url], lambda: backfill.run(
            engine, "deals", "fill_b", "contact_id", batch=5_000, pause=0.05), mix=writes)
    finally:
        engine.dispose()
    results.append((f"backfill, {LIVE_ROWS // 1000}k rows: 50k batches unthrottled /"
                    " 5k batches, 50 ms pauses", naive, safe))

    # lab 08: a rename while two releases serve, in one step vs expand/contract
    _plain(url, ["DELETE FROM deals WHERE id > 20010", "VACUUM ANALYZE deals"], autocommit=True)
    models.write_text(models.read_text().replace("    title = db.Column(db.String(200)",
                                                 "    name = db.Column(db.String(200)"))
    appserver.release(lab, "v3")
    v3 = appserver.start(lab, "v3")
    sales = traffic.sales("USD")
    naive = _measure([v2.url, v3.url], lambda: _plain(
        url, ["ALTER TABLE deals RENAME COLUMN title TO name"]), mix=sales)
    _plain(url, ["ALTER TABLE deals RENAME COLUMN name TO title"])
    with traffic.Load(v2.url, mix=sales, clients=4) as load:
        load.wait(0.5)
        _plain(url, ["ALTER TABLE deals ADD COLUMN name varchar(200)", SYNC_SQL, SYNC_TRIGGER])
        while _plain(url, [BACKFILL_SQL], autocommit=True):
            pass
        load.route(v2.url, v3.url)
        load.wait(1)
        load.route(v3.url)
        load.wait(0.5)
        _plain(url, ["DROP TRIGGER deals_title_name_sync ON deals",
                     "DROP FUNCTION deals_title_name_sync()",
                     "ALTER TABLE deals DROP COLUMN title",
                     "ALTER TABLE deals ALTER COLUMN name SET NOT NULL"])
        load.wait(0.5)
    results.append(("rename, 20k rows, 2 releases: one step / expand-contract", naive, load.report))
    return baseline, results
