"""The kit's `flask` commands. Each docstring is its --help text.

Errors: commands raise `LabError`; `init_app` installs the one boundary that
prints it as `Error: <message>` (exit 1). `flask db` is Flask-Migrate's
commands in a group of our own, whose upgrade and downgrade say, when they
fail, what was committed and where the database now is (labapp.commands.outcome).
"""
import copy
import datetime
import functools
import json
import os
import time

import click
from flask import current_app, g
from flask.cli import ScriptInfo, with_appcontext
from flask_migrate.cli import db as flask_migrate_db
from sqlalchemy.engine import make_url

from labapp import crm, errors
from labapp.commands import backfill, outcome, replay
from labapp.crm import data
from labapp.server import database, learners, pgserver


def _url():
    return current_app.config["SQLALCHEMY_DATABASE_URI"]


def _name():
    return make_url(_url()).database


@click.command("createdb")
@with_appcontext
def createdb_command():
    """Create the configured database (PostgreSQL, MySQL/MariaDB).

    SQLite needs none: its file appears on first use."""
    if learners.create_database(_url()):
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
    with database.friendly_errors(_url()), crm.db.engine.begin() as conn:
        counts = data.load(conn, data_dir)
    for table, count in counts.items():
        click.echo(f"Loaded {count:>4} rows into {table}")


@click.command("dumpdata")
@click.argument("data_dir", default="DATA", type=click.Path(file_okay=False))
@with_appcontext
def dumpdata_command(data_dir):
    """Write every table to DATA_DIR (default: DATA), one CSV file per table."""
    with database.friendly_errors(_url()), crm.db.engine.connect() as conn:
        counts = data.dump(conn, data_dir)
    for table, count in counts.items():
        click.echo(f"Dumped {count:>4} rows from {table}")


@click.command("replay-production")
@click.option("-m", "--message", default=None, help="The new revision's message.")
@click.option("--rev-id", default=None, help="The new revision's id (default: random).")
@click.option("--data", "data_dir", default="DATA", show_default=True,
              type=click.Path(file_okay=False), help="Production's DATA snapshot (CSV folder).")
@click.option("--branch", default="production", show_default=True,
              help="The branch (or any git revision) whose migrations/ is production's history.")
@click.option("--into-configured", is_flag=True,
              help="Rebuild the app's configured database (DROPS it) instead of <name>_replay.")
@click.option("--replace-migrations", is_flag=True,
              help="Replace a migrations/ folder here that differs from production's.")
@click.option("--dry-run", is_flag=True, help="Check everything and print the plan; change nothing.")
@with_appcontext
def replay_production_command(dry_run, **options):
    """Write the next migration on top of production's history.

    Reads BRANCH's migrations/ (git archive: your checkout is not touched),
    rebuilds a scratch database from it (<configured>_replay), loads the DATA
    snapshot, puts production's migrations/ here and runs the equivalent of
    `flask db migrate -m MESSAGE --rev-id ID` against that replica.
    Then review the new revision before you apply it anywhere."""
    with replay.planned(current_app, replay.Request(**options)) as plan:
        click.echo(plan)
        if dry_run:
            click.echo("Dry run: nothing was changed.")
            return
        result = replay.execute(current_app, plan, echo=click.echo)
    click.echo(result)


@click.group("pgserver")
def pgserver_group():
    """The kit's embedded PostgreSQL server (used when DATABASE_URL is unset)."""


@pgserver_group.command("status")
def pgserver_status():
    """Say whether the embedded server runs, and where its data lives."""
    state = "running" if pgserver.is_running() else "stopped"
    click.echo(f"embedded PostgreSQL: {state} (data: {pgserver.data_dir()})")


@pgserver_group.command("start")
def pgserver_start():
    """Start the embedded server (every lab does this for you)."""
    pgserver.server_uri()
    click.echo(f"embedded PostgreSQL: running (data: {pgserver.data_dir()})")


@pgserver_group.command("stop")
def pgserver_stop():
    """Stop the embedded server; the next lab or command starts it again."""
    click.echo("embedded PostgreSQL: " + ("stopped" if pgserver.stop() else "was not running"))


# -- flask room: a workshop on one server (labapp.room.roles, labapp.room.progress) -------------

@click.group("room")
def room_group():
    """A room of learners on the PostgreSQL server DATABASE_URL names."""


@room_group.command("prepare")
@click.argument("learners", nargs=-1, required=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Write each learner's URL (with password) to this JSON file, for the hub.")
def room_prepare(learners, out):
    """One role per learner (CREATEDB), whose lab databases only they can open."""
    from labapp.room import roles as room  # the room's modules: only for `flask room ...`

    prepared = room.prepare(learners, out)
    for name, entry in prepared.items():
        shown = entry["url"] if not out else make_url(entry["url"]).render_as_string(hide_password=True)
        click.echo(f"{name:<20} role {entry['role']:<24} {shown}")
    if out:
        click.echo(f"URLs with passwords: {out} (LABAPP_ROOM_FILE for tools/hub/jupyterhub_config.py)")


@room_group.command("roster")
@click.argument("learners", nargs=-1, required=True)
@click.option("--admin", default="instructor", show_default=True, help="The instructor's name (an admin).")
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="The roster file to write (LABAPP_HUB_ROSTER for tools/hub/jupyterhub_config.py).")
def room_roster(learners, admin, out):
    """A roster for the hub: each learner (and the admin) with a password of their own."""
    from labapp.room import roster  # the room's modules: only for `flask room ...`

    if os.path.exists(out):
        raise click.ClickException(f"{out} exists: edit it, or remove it first")
    made = roster.new(learners, admin)
    roster.write(made, out)
    for name, password in made.passwords.items():
        click.echo(f"{name:<20} {password}" + ("   (admin)" if name in made.admins else ""))
    click.echo(f"roster: {out} (only its owner can read it); hand each person their line")


@room_group.command("drop")
@click.argument("learners", nargs=-1, required=True)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def room_drop(learners, yes):
    """Drop each learner's databases and role (after the workshop)."""
    from labapp.room import roles as room  # the room's modules: only for `flask room ...`

    if not yes:
        click.confirm(f"Drop the databases and roles of {len(learners)} learners?", abort=True)
    for name, dropped in room.drop(learners).items():
        click.echo(f"{name}: dropped role and {len(dropped)} databases")


@room_group.command("progress")
@click.option("--learners", "names", default=None,
              help="Comma-separated names (default: every learner with a database on the server).")
@click.option("--roster", default=None, type=click.Path(dir_okay=False),
              help="The hub's roster (flask room roster): every learner on it is listed, started or not.")
@click.option("--notebooks", default=None,
              help="Each learner's notebooks folder, {learner} for the name, e.g. "
                   "/home/jupyter-{learner}/notebooks (the file-based checks read it).")
@click.option("--pgdata", default=None,
              help="Each learner's embedded server's data folder, {learner} for the name "
                   "(instead of DATABASE_URL; a server that is not running counts as offline).")
@click.option("--labs", "lab_names", default=None, help="Comma-separated labs (default: all).")
@click.option("--watch", type=float, default=0, help="Refresh every N seconds (Ctrl-C stops).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def room_progress(names, roster, notebooks, pgdata, lab_names, watch, as_json):
    """Each learner x exercise: passed, still the hint, or not started.

    Runs each lab's own self-check cells (from its solved notebook) against
    every learner's databases, read-only, all in ONE checking process, and
    prints a timestamped table, then where each learner is stuck, with the hint."""
    from labapp.room import progress  # nbformat and the labs' checks: only for `flask room ...`
    from labapp.room import roster as room_roster  # the room's modules: only for `flask room ...`

    chosen = names.split(",") if names else None
    if roster:
        chosen = list(dict.fromkeys(room_roster.load(roster).learners + (chosen or [])))
    with progress.Checker() as checker:
        while True:
            started = time.monotonic()
            at = datetime.datetime.now(datetime.timezone.utc)
            results = progress.survey(chosen, notebooks=notebooks, pgdata=pgdata, checker=checker,
                                      only=lab_names.split(",") if lab_names else None)
            if as_json:
                click.echo(json.dumps(results, indent=2))
            else:
                if watch:
                    click.clear()
                click.echo(progress.table(results, at=at, seconds=time.monotonic() - started))
            if not watch:
                return
            time.sleep(watch)


# -- flask db: Flask-Migrate's commands, in a group that reports failures truly ------

class MigrationGroup(click.Group):
    """Any driver error from a `flask db` command becomes one line."""

    def invoke(self, ctx):
        app = ctx.ensure_object(ScriptInfo).load_app()
        with database.friendly_errors(app.config["SQLALCHEMY_DATABASE_URI"]):
            return super().invoke(ctx)


def _reporting(command):
    """A copy of Flask-Migrate's upgrade/downgrade whose failure line says what
    was committed before it, read from alembic_version (labapp.commands.outcome)."""
    reporting = copy.copy(command)

    @functools.wraps(command.callback)
    def callback(*args, **kwargs):
        if kwargs.get("sql"):  # offline: SQL printed, no connection, nothing to report
            return command.callback(*args, **kwargs)
        app = click.get_current_context().ensure_object(ScriptInfo).load_app()
        # `flask db -d DIR upgrade` (the group's option) or `flask db upgrade -d DIR`
        directory = (kwargs.get("directory") or getattr(g, "directory", None)
                     or app.extensions["migrate"].directory)
        with outcome.reported(app, command.name, directory):
            return command.callback(*args, **kwargs)

    reporting.callback = callback
    return reporting


def migration_group():
    commands = {name: _reporting(cmd) if name in ("upgrade", "downgrade") else cmd
                for name, cmd in flask_migrate_db.commands.items()}
    # the same options (-d, -x) and callback (it hands them to Flask-Migrate via `g`)
    return MigrationGroup("db", commands=commands, callback=flask_migrate_db.callback,
                          params=flask_migrate_db.params, help=flask_migrate_db.help)


def init_app(app):
    """The kit's commands, and the one error boundary of the `flask` process."""
    errors.install_cli_boundary()
    # Alembic wraps its messages at the terminal's width, which splits long
    # paths at a different place on every machine; print each on one line.
    from alembic.util import messaging

    messaging.TERMWIDTH = None
    for command in (createdb_command, dropdb_command, loaddata_command, dumpdata_command,
                    pgserver_group, replay_production_command, backfill.backfill_command,
                    backfill.batch_delete_command):
        app.cli.add_command(command)


def register_migration_commands(app):
    """`flask db`: replaces the group Flask-Migrate's init_app registered."""
    app.cli.add_command(migration_group())
