"""What a failed `flask db upgrade` or `downgrade` really left behind.

On PostgreSQL Flask-Migrate runs every pending revision in one transaction, so
a failure normally rolls them all back. Not always: a revision's
`op.get_context().autocommit_block()` commits everything before it (and what it
runs itself), and `transaction_per_migration=True` in env.py commits each
revision as it ends. So the failure line is built from facts: alembic_version
read before and after, and the statements that ran in autocommit mode.

    with outcome.reported(app, "upgrade", directory):
        ...  # a DBAPIError leaves as a LabError whose one line says what stayed
"""
import contextlib

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from labapp import database
from labapp.errors import LabError


def applied(url):
    """The revisions alembic_version holds, sorted: () at base, None if unreadable."""
    engine = database.quick_engine(url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return ()
            return tuple(sorted(v for (v,) in conn.exec_driver_sql(
                "SELECT version_num FROM alembic_version")))
    except DBAPIError:
        return None
    finally:
        engine.dispose()


@contextlib.contextmanager
def _watched(engine):
    """Record statements run in autocommit mode, and commits, on `engine`."""
    seen = {"autocommit": [], "commits": 0}

    def statement(conn, cursor, sql, params, context, executemany):
        if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            seen["autocommit"].append(" ".join(str(sql).split()))

    def commit(conn):
        seen["commits"] += 1

    sa.event.listen(engine, "before_cursor_execute", statement)
    sa.event.listen(engine, "commit", commit)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", statement)
        sa.event.remove(engine, "commit", commit)


_BACKENDS = {"mysql": "MySQL/MariaDB", "mariadb": "MariaDB"}


def _at(revisions):
    return ", ".join(revisions) if revisions else "base (no revision)"


def _shown(statements):
    more = f" and {len(statements) - 2} more" if len(statements) > 2 else ""
    return "; ".join(s[:80] for s in statements[:2]) + more


def _between(directory, upper, lower):
    """Revisions above `lower` up to and including `upper`, oldest first."""
    from alembic.script import ScriptDirectory

    try:
        scripts = ScriptDirectory(str(directory))
        found = scripts.iterate_revisions(upper or "base", lower or "base")
        return sorted(s.revision for s in found)
    except Exception:  # an odd history: say where it is, not how it got there
        return []


def story(direction, before, after, seen, directory, backend="postgresql"):
    """The second half of the failure line: what the failed command left."""
    if after is None:
        return "Where it stopped is unknown (alembic_version could not be read): run `flask db current`"
    if backend == "sqlite":
        return ("Alembic runs SQLite's DDL without a transaction (Python's sqlite3 driver "
                "opens none for it), so what ran before the error may stay; "
                f"the database is now at {_at(after)}")
    if backend != "postgresql":
        return (f"{_BACKENDS.get(backend, backend)} does not roll back DDL, so what ran before "
                f"the error stays; the database is now at {_at(after)}")
    if before is None:
        return f"The database is now at {_at(after)}"
    if before == after:
        verb = "applied" if direction == "upgrade" else "undone"
        text = f"Nothing was {verb}; the database is still at {_at(after)}"
        if seen["autocommit"]:
            text += f" (but its autocommit_block committed: {_shown(seen['autocommit'])})"
        return text
    if direction == "upgrade":
        moved = _between(directory, after, before)
        verb = "committed"
    else:
        moved = _between(directory, before, after)
        verb = "undone and committed"
    why = "transaction_per_migration"
    if seen["autocommit"]:
        why = f"autocommit_block; it also committed: {_shown(seen['autocommit'])}"
    names = ", ".join(moved) or "part of the work"
    return (f"{names} {'was' if len(moved) <= 1 else 'were'} {verb} before the failure "
            f"({why}); the database is now at {_at(after)}")


@contextlib.contextmanager
def reported(app, direction, directory):
    """Run a `flask db upgrade|downgrade` body; turn its driver error into one true line."""
    from labapp import db

    with app.app_context():
        engine = db.engine
    # the engine's URL, not the configured one: Flask-SQLAlchemy puts a relative
    # sqlite:/// file in the instance folder
    url = engine.url.render_as_string(hide_password=False)
    before = applied(url)
    with _watched(engine) as seen:
        try:
            yield
        except DBAPIError as exc:
            if not exc.statement:  # no connection at all: the group's one line says why
                raise
            after = applied(url)
            backend = sa.engine.make_url(url).get_backend_name()
            told = story(direction, before, after, seen, directory, backend)
            raise LabError(f"{database.failed_statement(exc)}. {told}.") from None
