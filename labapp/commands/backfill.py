"""`flask backfill`: fill a column in committed batches that walk the primary key,
run by hand outside the deploy (GitLab's batched background migrations, small).

    flask backfill deals id_big id --batch 5000 --pause 0.05

sets COLUMN = EXPRESSION on TABLE's rows where COLUMN IS NULL, in id ranges
(`id > last AND id <= last + batch`, through the primary key's index: each row
read once, never the rows filled before), up to the largest id when the first
run began; rows inserted later are the app's, and the expand's trigger fills
them. Each batch commits with its progress (the last id done) in the same
transaction, in `labapp.backfills` (a schema of its own, which autogenerate does
not compare): killed at any moment, the command run again goes on after the
last batch that committed, and neither redoes nor skips a row. `--pause`
seconds between batches throttle it, so that the app's own writes get their
turn; `--restart` forgets the progress kept. A progress bar on a terminal;
elsewhere (a notebook's `!flask`), a line every tenth of the way.
"""
import re
import time

import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from labapp.crm import db
from labapp.errors import LabError

NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
PROGRESS = """CREATE SCHEMA IF NOT EXISTS labapp;
CREATE TABLE IF NOT EXISTS labapp.backfills (
    name text PRIMARY KEY,   -- table.column
    last_id bigint NOT NULL, -- every row up to it is done
    top bigint NOT NULL      -- the largest id when the first run began
)"""


def _identifier(kind, value):
    if not NAME.match(value):
        raise LabError(f"{kind} {value!r}: a plain lower-case name (letters, digits, _) only")
    return value


def _primary_key(conn, table):
    found = conn.execute(sa.text(
        "SELECT a.attname, format_type(a.atttypid, NULL) FROM pg_index i"
        " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
        " WHERE i.indrelid = to_regclass(:table) AND i.indisprimary"), {"table": table}).all()
    if conn.execute(sa.text("SELECT to_regclass(:table)"), {"table": table}).scalar() is None:
        raise LabError(f"no table {table!r} in this database")
    if len(found) != 1 or found[0][1] not in ("integer", "bigint", "smallint"):
        raise LabError(f"{table}: the backfill walks an integer primary key of one column, "
                       f"and {table}'s is {', '.join(f'{n} {t}' for n, t in found) or 'missing'}")
    return found[0][0]


def run(engine, table, column, expression, batch=5000, pause=0.0, restart=False, step=None):
    """Backfill `table`.`column` = `expression` (see the module's docstring); step(last, top)
    after each committed batch. Returns (rows updated by this run, top)."""
    name, updated = f"{table}.{column}", 0
    with engine.begin() as conn:
        for statement in PROGRESS.split(";"):
            conn.execute(sa.text(statement))
        key = _primary_key(conn, table)
        if restart:
            conn.execute(sa.text("DELETE FROM labapp.backfills WHERE name = :n"), {"n": name})
        conn.execute(sa.text(
            f"INSERT INTO labapp.backfills (name, last_id, top)"
            f" SELECT :n, 0, coalesce(max({key}), 0) FROM {table} ON CONFLICT (name) DO NOTHING"),
            {"n": name})
        last, top = conn.execute(sa.text(
            "SELECT last_id, top FROM labapp.backfills WHERE name = :n"), {"n": name}).one()
    fill = sa.text(f"UPDATE {table} SET {column} = {expression}"
                   f" WHERE {key} > :last AND {key} <= :upto AND {column} IS NULL")
    done = sa.text("UPDATE labapp.backfills SET last_id = :upto WHERE name = :n")
    while last < top:
        upto = min(last + batch, top)
        with engine.begin() as conn:  # the batch and its progress commit together
            updated += conn.execute(fill, {"last": last, "upto": upto}).rowcount
            conn.execute(done, {"upto": upto, "n": name})
        last = upto
        if step:
            step(last, top)
        if pause and last < top:
            time.sleep(pause)
    return updated, top


@click.command("backfill")
@click.argument("table")
@click.argument("column")
@click.argument("expression")
@click.option("--batch", default=5000, show_default=True, type=click.IntRange(1),
              help="Ids a batch covers (each batch one transaction).")
@click.option("--pause", default=0.0, show_default=True, type=click.FloatRange(0),
              help="Seconds between batches: the app's writes get their turn.")
@click.option("--restart", is_flag=True, help="Forget the progress kept: start from the first id.")
@with_appcontext
def backfill_command(table, column, expression, batch, pause, restart):
    """Set COLUMN = EXPRESSION on TABLE's rows where COLUMN IS NULL, in committed
    batches that walk the primary key; resumable (killed, run it again).

    Run it outside the deploy, after the expand that added COLUMN (and its
    trigger, for the rows the app writes meanwhile)."""
    table, column = _identifier("table", table), _identifier("column", column)
    engine = db.engine
    shown = {"tenth": 0}

    def lines(last, top):  # no terminal: a line every tenth of the way, the same on every run
        tenth = last * 10 // top if top else 10
        if tenth > shown["tenth"]:
            shown["tenth"] = tenth
            click.echo(f"backfill {table}.{column}: ids up to {last} of {top}")

    try:
        if click.get_text_stream("stdout").isatty():
            with click.progressbar(length=1, label=f"backfill {table}.{column}") as bar:
                def step(last, top):
                    bar.length = top
                    bar.update(last - bar.pos)
                updated, top = run(engine, table, column, expression, batch, pause, restart, step)
        else:
            updated, top = run(engine, table, column, expression, batch, pause, restart, lines)
    except sa.exc.DBAPIError as exc:
        raise LabError(f"{type(exc.orig).__name__}: {str(exc.orig).strip().splitlines()[0]}") from None
    with engine.connect() as conn:
        left = conn.execute(sa.text(f"SELECT count(*) FROM {table} WHERE {column} IS NULL")).scalar()
    click.echo(f"backfill {table}.{column}: done, {updated} rows set by this run, {left} left NULL")
