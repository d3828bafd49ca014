"""`flask trace upgrade|downgrade`: Flask-Migrate's command, with the lock trace.

    flask --app yourapp trace upgrade [REVISION] [--save trace.json] [--exact | --no-times | --quiet]

Registered for every Flask app in the environment through the `flask.commands`
entry point (pyproject.toml), so it works on any Flask-Migrate project, not only
the kit's. It runs `flask_migrate.upgrade` (or `downgrade`) as `flask db` does,
in the app context, while `labapp.live.locktrace` listens on the engine Flask-Migrate's
env.py uses; then prints the table and the verdict line. From a notebook:

    trace = tracecli.traced("upgrade")   # in the app context; a locktrace.Trace
"""
import click
import flask_migrate
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.exc import DBAPIError

from labapp import errors
from labapp.live import locktrace
from labapp.errors import LabError, debugging


def _first_line(exc):
    return (str(exc).strip().splitlines() or [""])[0]


def traced(action, directory=None, revision=None, x_arg=None, failed=None):
    """Run Flask-Migrate's `action` ("upgrade" or "downgrade") under the trace, in
    the current app context; return the Trace. If the migration fails after it
    ran a statement, failed(trace) sees the trace so far before the error goes on."""
    migrate = current_app.extensions.get("migrate")
    if migrate is None:
        raise LabError("this app does not use Flask-Migrate (no Migrate(app, db)): "
                       "nothing to trace")
    revision = revision or {"upgrade": "head", "downgrade": "-1"}[action]
    run = getattr(flask_migrate, action)
    tracer = locktrace.Tracer(migrate.db.engine, f"{action} {revision}")
    try:
        with tracer:
            run(directory, revision, x_arg=list(x_arg or ()))
    except BaseException:
        if failed is not None and tracer.trace is not None and tracer.trace.shown():
            failed(tracer.trace)
        raise
    return tracer.trace


def _command(action, default, help_text):
    @click.command(action, help=help_text)
    @click.argument("revision", default=default)
    @click.option("-d", "--directory", default=None,
                  help="Migration script directory (default is 'migrations').")
    @click.option("-x", "--x-arg", multiple=True,
                  help="Additional arguments consumed by custom env.py scripts.")
    @click.option("--save", type=click.Path(dir_okay=False), default=None,
                  help="Also write the trace to this JSON file (times: time.monotonic()), "
                       "a failed one too.")
    @click.option("--exact", is_flag=True, help="Seconds instead of < 0.1 s / 0.1–1 s / ≥ 1 s.")
    @click.option("--quiet", is_flag=True,
                  help="Print no table and no verdict (with --save: keep the trace for a plot).")
    @click.option("--no-times", is_flag=True,
                  help="No times (they vary from run to run): how far each lock was held, in "
                       "statements, only waits of 0.1 s or more, and of an env.py that retries "
                       "after a lock timeout, only the attempt that got through. What a "
                       "notebook stores.")
    @with_appcontext
    @errors.boundary  # in any Flask app, not only the kit's: its one line, exit 1
    def command(revision, directory, x_arg, save, exact, quiet, no_times):
        def show(trace):
            if save:
                trace.save(save)
            if quiet:
                return
            click.echo(trace.table(exact=exact, times=not no_times))
            click.echo(trace.verdict(exact=exact, times=not no_times))

        try:
            show(traced(action, directory, revision, x_arg, failed=show))
        except DBAPIError as exc:  # the table above ends with the failed statement
            if debugging():
                raise
            raise LabError(f"{type(exc.orig).__name__}: {_first_line(exc.orig)} "
                           "(LABAPP_DEBUG=1 shows the traceback)") from None

    return command


@click.group("trace")
def trace_group():
    """Migrate and show what each statement locked.

    Runs Flask-Migrate's upgrade or downgrade as `flask db` does, then prints
    for each statement the locks it took, how long they were held and which
    of the app's reads and writes they blocked, measured on PostgreSQL."""


trace_group.add_command(_command(
    "upgrade", "head",
    "Upgrade to REVISION (default: head), tracing its locks.\n\n"
    "The same revisions, env.py and transactions as `flask db upgrade`."))
trace_group.add_command(_command(
    "downgrade", "-1",
    "Revert to REVISION (default: -1), tracing its locks.\n\n"
    "The same revisions, env.py and transactions as `flask db downgrade`."))
