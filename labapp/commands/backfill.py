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
elsewhere, and in a notebook (whose `!flask` runs on a pseudo-terminal, where a
bar would store a line per redraw, with its ETA), a line every tenth of the ids
(10%, 20%, ...: the same lines on every run, whatever the largest id).

`flask batch-delete` walks the same way to delete:

    flask batch-delete deals "id <= 600000" --batch 10000 --pause 0.02 --vacuum

deletes TABLE's rows where CONDITION, in id ranges from the smallest matching id
to the largest one when the first run began, each batch (and its progress) one
short transaction: its row locks go at its COMMIT, where a one-statement DELETE
holds every one of them until the end. `--vacuum` runs VACUUM on the table after
each batch (outside any transaction, as VACUUM must run), so that the space the
batch freed is recorded in the free space map, reusable by new rows, before the
next one; and once more at the end. VACUUM removes a deleted row only once no
transaction that began before the DELETE's COMMIT is still open (an edit that waited
for the batch, say): the VACUUM after the last batch may have to leave some of its
rows, the one after it takes them. Autovacuum, when it is on, does that at its own
pace, not after each batch: once the dead rows pass its threshold (by default 50 plus a fifth of the
table's rows), at most once every `autovacuum_naptime` (a minute). A VACUUM that
removes rows also reads every index of the table whole (a cost that grows with the
table, paid once a batch). VACUUM takes SHARE UPDATE EXCLUSIVE: the app's reads
and writes go on. Giving empty pages at the end of the file back to the disk
needs ACCESS EXCLUSIVE for a moment: VACUUM only tries for it (it never queues
behind the app's locks) and lets it go as soon as a request waits for the table.
Resumable like the backfill.
"""
import contextlib
import re
import time

import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from labapp import settings
from labapp.crm import db
from labapp.errors import LabError
from labapp.server import database

NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
PROGRESS = """CREATE SCHEMA IF NOT EXISTS labapp;
CREATE TABLE IF NOT EXISTS labapp.backfills (
    name text PRIMARY KEY,   -- table.column
    last_id bigint NOT NULL, -- every row up to it is done
    top bigint NOT NULL      -- the largest id when the first run began
);
ALTER TABLE labapp.backfills ADD COLUMN IF NOT EXISTS first_id bigint NOT NULL DEFAULT 0
"""


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


def walk(engine, name, table, statement, where="true", batch=5000, pause=0.0, restart=False,
         step=None, after_batch=None):
    """Run `statement` (SQL with :last and :upto, the batch's id range) in committed
    batches that walk `table`'s primary key, from the smallest id `where` holds to the
    largest one when the first run (kept as `name`) began. step(last, first, top)
    before the first batch and after each committed one; after_batch() after each
    commit. Returns (rows the statements changed in this run, first, top)."""
    changed = 0
    with engine.begin() as conn:
        for sql in PROGRESS.split(";"):
            conn.execute(sa.text(sql))
        key = _primary_key(conn, table)
        if restart:
            conn.execute(sa.text("DELETE FROM labapp.backfills WHERE name = :n"), {"n": name})
        conn.execute(sa.text(
            f"INSERT INTO labapp.backfills (name, last_id, top, first_id)"
            f" SELECT :n, coalesce(min({key}) - 1, 0), coalesce(max({key}), 0),"
            f" coalesce(min({key}) - 1, 0) FROM {table} WHERE {where}"
            f" ON CONFLICT (name) DO NOTHING"), {"n": name})
        last, first, top = conn.execute(sa.text(
            "SELECT last_id, first_id, top FROM labapp.backfills WHERE name = :n"),
            {"n": name}).one()
    work = sa.text(statement.format(key=key))
    done = sa.text("UPDATE labapp.backfills SET last_id = :upto WHERE name = :n")
    if step:
        step(last, first, top)  # where it starts: the first id, or where a killed run stopped
    while last < top:
        upto = min(last + batch, top)
        with engine.begin() as conn:  # the batch and its progress commit together
            changed += conn.execute(work, {"last": last, "upto": upto}).rowcount
            conn.execute(done, {"upto": upto, "n": name})
        last = upto
        if after_batch:
            after_batch()
        if step:
            step(last, first, top)
        if pause and last < top:
            time.sleep(pause)
    return changed, first, top


def run(engine, table, column, expression, batch=5000, pause=0.0, restart=False, step=None):
    """Backfill `table`.`column` = `expression` (see the module's docstring); step(last,
    first, top) before the first batch and after each committed one. Returns (rows updated
    by this run, top)."""
    fill = (f"UPDATE {table} SET {column} = {expression}"
            f" WHERE {{key}} > :last AND {{key}} <= :upto AND {column} IS NULL")
    updated, _, top = walk(engine, f"{table}.{column}", table, fill, "true", batch, pause,
                           restart, step)
    return updated, top


def delete(engine, table, condition, batch=5000, pause=0.0, restart=False, vacuum=False,
           step=None):
    """Delete `table`'s rows where `condition` in committed keyset batches (the module's
    docstring); VACUUM after each batch with `vacuum`. Returns (rows deleted by this run,
    first, top)."""
    statement = (f"DELETE FROM {table} WHERE {{key}} > :last AND {{key}} <= :upto"
                 f" AND ({condition})")

    def vacuum_now():
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text(f"VACUUM {table}"))

    done = walk(engine, f"delete {table} where {condition}", table, statement, condition, batch,
                pause, restart, step, vacuum_now if vacuum else None)
    if vacuum and done[0]:
        vacuum_now()  # once more: what the last batch's VACUUM had to leave (the docstring)
    return done


def _tenths(label):
    """step(last, first, top) that prints a line for every tenth of the ids crossed (the
    same lines on every run), and, first, where a killed run stopped."""
    shown = {"tenth": None}

    def lines(last, first, top):
        span = top - first
        tenth = (last - first) * 10 // span if span > 0 else 10
        if shown["tenth"] is None:  # before the first batch: where a killed run stopped
            shown["tenth"] = tenth
            if first < last < top:
                click.echo(f"{label}: resumed at {tenth * 10}% of the ids")
            return
        for crossed in range(shown["tenth"] + 1, tenth + 1):
            click.echo(f"{label}: {crossed * 10}% of the ids")
        shown["tenth"] = max(shown["tenth"], tenth)
    return lines


def _on_a_terminal():
    return click.get_text_stream("stdout").isatty() and not settings.in_a_kernel()


def _bar(label, work):
    """work(step) with a progress bar as its step(last, first, top)."""
    with click.progressbar(length=1, label=label) as bar:
        def step(last, first, top):
            bar.length = max(top - first, 1)
            bar.update(last - first - bar.pos)
        return work(step)


@contextlib.contextmanager
def _one_line_errors():
    """A statement the database refused (a bad EXPRESSION or CONDITION) as one line:
    `UndefinedColumn: column "x" does not exist`; what earlier batches did stays committed."""
    try:
        yield
    except sa.exc.DBAPIError as exc:
        raise LabError(f"{type(exc.orig).__name__}: {database.short_reason(exc)}") from None


def _batches(command):
    """The walk's options, the same for every batched command."""
    command = click.option("--pause", default=0.0, show_default=True, type=click.FloatRange(0),
                           help="Seconds between batches: the app's writes get their turn.")(command)
    return click.option("--batch", default=5000, show_default=True, type=click.IntRange(1),
                        help="Ids a batch covers (each batch one transaction).")(command)


_restart = click.option("--restart", is_flag=True, help="Forget the progress kept: start from the first id.")


@click.command("backfill")
@click.argument("table")
@click.argument("column")
@click.argument("expression")
@_batches
@_restart
@with_appcontext
def backfill_command(table, column, expression, batch, pause, restart):
    """Set COLUMN = EXPRESSION on TABLE's rows where COLUMN IS NULL, in committed
    batches that walk the primary key; resumable (killed, run it again).

    Run it outside the deploy, after the expand that added COLUMN (and its
    trigger, for the rows the app writes meanwhile)."""
    table, column = _identifier("table", table), _identifier("column", column)
    engine, label = db.engine, f"backfill {table}.{column}"

    def work(step):
        return run(engine, table, column, expression, batch, pause, restart, step)

    with _one_line_errors():
        updated, top = _bar(label, work) if _on_a_terminal() else work(_tenths(label))
    with engine.connect() as conn:
        left = conn.execute(sa.text(f"SELECT count(*) FROM {table} WHERE {column} IS NULL")).scalar()
    click.echo(f"backfill {table}.{column}: done, {updated} rows set by this run, {left} left NULL")


@click.command("batch-delete")
@click.argument("table")
@click.argument("condition")
@_batches
@click.option("--vacuum", is_flag=True,
              help="VACUUM the table after each batch: the space freed is reusable by new rows.")
@_restart
@with_appcontext
def batch_delete_command(table, condition, batch, pause, vacuum, restart):
    """Delete TABLE's rows where CONDITION (SQL), in committed batches that walk
    the primary key; resumable (killed, run it again).

    Each batch is its own short transaction: its row locks go at its COMMIT,
    where one DELETE holds all of them to the end."""
    table = _identifier("table", table)
    engine, label = db.engine, f"batch-delete {table}"

    def work(step):
        return delete(engine, table, condition, batch, pause, restart, vacuum, step)

    with _one_line_errors():
        deleted, _, _ = _bar(label, work) if _on_a_terminal() else work(_tenths(label))
        with engine.connect() as conn:
            left = conn.execute(sa.text(f"SELECT count(*) FROM {table} WHERE {condition}")).scalar()
    click.echo(f"{label}: done, {deleted} rows deleted by this run, {left} left where {condition}")
