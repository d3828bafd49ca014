"""Two migrations of the labs, timed: `flask replay-production` on lab 03's kind of
project, and lab 04's enum swap at a million rows against ALTER TYPE ... ADD VALUE."""
import time

import sqlalchemy as sa

from labapp.server import database
from tools import scenarios
from tools.bench.measure import scratch_database

LABELS = ["USD", "EUR", "AED", "GBP"]
DEALS_SQL = """
CREATE TYPE dealcurrency AS ENUM ('USD', 'EUR', 'AED', 'GBP');
CREATE TABLE deals (id serial PRIMARY KEY, currency dealcurrency NOT NULL);
INSERT INTO deals (currency)
SELECT (ARRAY['USD', 'EUR', 'AED', 'GBP']::dealcurrency[])[1 + mod(i, 4)]
FROM generate_series(1, 1000000) AS i;
"""


def bench_replay(table, tmp):
    """`flask replay-production` on lab 03's kind of project (tools/scenarios.py
    builds it: production with 0001-0002, master with a newer model, DATA/)."""
    with scratch_database("bench_replay") as (name, url):
        project = scenarios.make_project(tmp / "crm", name)
        try:
            start = time.perf_counter()
            proc = project.flask("replay-production", "-m", "next", "--rev-id", "0003")
            seconds = time.perf_counter() - start
            assert proc.returncode == 0, proc.output
        finally:
            database.drop_database(scenarios.replica_url(url), missing_ok=True)
    table.row("flask replay-production (0001-0002 + DATA)", seconds, "git archive, rebuild, load, migrate")


def _timed_transaction(engine, statements):
    with engine.begin() as conn:
        start = time.perf_counter()
        for statement in statements:
            conn.exec_driver_sql(statement)
        return time.perf_counter() - start


def bench_enum(table):
    """1M deals in a scratch database: the temporary-type swap (rewrites the
    table twice under ACCESS EXCLUSIVE), the rename variant (once), against
    ALTER TYPE ... ADD VALUE (catalog only)."""
    with scratch_database("bench_enum") as (_, url):
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            _timed_transaction(engine, [DEALS_SQL])
            swap = _timed_transaction(engine, scenarios.swap_through_temporary_type(LABELS + ["BTC"]))
            rename = _timed_transaction(engine, scenarios.swap_renaming_the_old_type(LABELS + ["BTC", "JPY"]))
            add = _timed_transaction(engine, ["ALTER TYPE dealcurrency ADD VALUE 'XRP'"])
        finally:
            engine.dispose()
    table.row("enum swap via temporary type, 1M rows", swap, "two table rewrites, ACCESS EXCLUSIVE")
    table.row("enum swap renaming the old type away, 1M rows", rename,
              f"one table rewrite: {rename / swap:.2f}x the swap's time")
    table.row("ALTER TYPE ... ADD VALUE, 1M rows", add, f"{swap / add:,.0f}x faster than the swap")
