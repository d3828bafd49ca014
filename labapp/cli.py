"""The kit's `flask` commands. Each docstring is its --help text."""
import click
from flask import current_app
from flask.cli import with_appcontext

from labapp import data, database, replay


def _url():
    return current_app.config["SQLALCHEMY_DATABASE_URI"]


def _name():
    from sqlalchemy.engine import make_url

    return make_url(_url()).database


@click.command("createdb")
@with_appcontext
def createdb_command():
    """Create the configured database (PostgreSQL, MySQL/MariaDB).

    SQLite needs none: its file appears on first use."""
    if database.create_database(_url()):
        click.echo(f"Created database {_name()!r}.")
    else:
        click.echo("SQLite creates its database file on first use: nothing to do.")


@click.command("dropdb")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def dropdb_command(yes):
    """Drop the configured database and everything in it."""
    if not yes:
        click.confirm(f"Drop database {_name()!r} and all its data?", abort=True)
    database.drop_database(_url())
    click.echo(f"Dropped database {_name()!r}.")


@click.command("loaddata")
@click.argument("data_dir", default="DATA", type=click.Path(file_okay=False))
@with_appcontext
def loaddata_command(data_dir):
    """Load DATA_DIR (default: DATA), one CSV file per table, in one transaction.

    Tables are filled parents first. Any bad file, row or constraint loads
    nothing and names the file and line."""
    from labapp import db

    with database.friendly_errors(_url()), db.engine.begin() as conn:
        counts = data.load(conn, data_dir)
    for table, count in counts.items():
        click.echo(f"Loaded {count:>4} rows into {table}")


@click.command("dumpdata")
@click.argument("data_dir", default="DATA", type=click.Path(file_okay=False))
@with_appcontext
def dumpdata_command(data_dir):
    """Write every table to DATA_DIR (default: DATA), one CSV file per table."""
    from labapp import db

    with database.friendly_errors(_url()), db.engine.connect() as conn:
        counts = data.dump(conn, data_dir)
    for table, count in counts.items():
        click.echo(f"Dumped {count:>4} rows from {table}")


@click.group("pgserver")
def pgserver_group():
    """The kit's embedded PostgreSQL server (used when DATABASE_URL is unset)."""


@pgserver_group.command("status")
def pgserver_status():
    """Say whether the embedded server runs, and where its data lives."""
    from labapp import pgserver

    state = "running" if pgserver.is_running() else "stopped"
    click.echo(f"embedded PostgreSQL: {state} (data: {pgserver.data_dir()})")


@pgserver_group.command("start")
def pgserver_start():
    """Start the embedded server (every lab does this for you)."""
    from labapp import pgserver

    pgserver.server_uri()
    click.echo(f"embedded PostgreSQL: running (data: {pgserver.data_dir()})")


@pgserver_group.command("stop")
def pgserver_stop():
    """Stop the embedded server; the next lab or command starts it again."""
    from labapp import pgserver

    click.echo("embedded PostgreSQL: " + ("stopped" if pgserver.stop() else "was not running"))


def _friendly_db_group():
    """Make `flask db ...` failures one readable line instead of a traceback.

    Flask-Migrate's commands let driver errors escape; on PostgreSQL the
    failed migration's transaction has been rolled back by then."""
    from flask_migrate import cli as migrate_cli

    group = migrate_cli.db
    if getattr(group, "_labapp_friendly", False):
        return
    invoke = group.invoke

    def friendly_invoke(ctx):
        from flask.cli import ScriptInfo

        url = ctx.ensure_object(ScriptInfo).load_app().config["SQLALCHEMY_DATABASE_URI"]
        rolled_back = " (rolled back: nothing was changed)" if url.startswith("postgresql") else ""
        with database.friendly_errors(url, after_failed_statement=rolled_back):
            return invoke(ctx)

    group.invoke = friendly_invoke
    group._labapp_friendly = True


def init_app(app):
    # Alembic wraps its messages at the terminal's width, which splits long
    # paths at a different place on every machine; print each on one line.
    from alembic.util import messaging

    messaging.TERMWIDTH = None
    for command in (createdb_command, dropdb_command, loaddata_command, dumpdata_command,
                    pgserver_group, replay.replay_production_command):
        app.cli.add_command(command)
    _friendly_db_group()
