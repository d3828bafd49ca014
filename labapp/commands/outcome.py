"""What a failed `flask db upgrade` or `downgrade` really left behind.

On PostgreSQL Flask-Migrate runs every pending revision in one transaction, so
a failure normally rolls them all back. Not always: a revision's
`op.get_context().autocommit_block()` commits everything before it (and what it
runs itself), and `transaction_per_migration=True` in env.py commits each
revision as it ends. So the failure line is built from facts: alembic_version
read before and after, and the statements that ran in autocommit mode.

    with outcome.reported(app, "upgrade", directory):
        ...  # a DBAPIError leaves as a LabError whose one line says what stayed
             # (so does a CompileError: a statement SQLAlchemy cannot write)
"""
import contextlib

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy.exc import CompileError, DBAPIError

from labapp import crm
from labapp.server import database
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


# statements that change nothing lasting: never reported as committed work
_READ_ONLY = ("SELECT", "SET", "SHOW", "RESET")


@contextlib.contextmanager
def _watched(engine):
    """Watch `engine` for what reaches the database for good although no
    revision records it: statements an autocommit_block ran, and those of a
    transaction the block committed after the last alembic_version stamp (the
    revision's own work before its block). Also: did any statement run in
    autocommit mode, and was the failing one among them?"""
    # stamped: this process committed an alembic_version stamp (else a move of
    # alembic_version during the run was another session's: two upgrades at once)
    seen = {"autocommit": [], "blocks": False, "failed_outside": False, "stamped": False}
    in_transaction = []

    def autocommit(conn):
        return conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT"

    def before(conn, cursor, sql, params, context, executemany):
        if autocommit(conn):
            seen["blocks"] = seen["failed_outside"] = True  # until it completes

    def after(conn, cursor, sql, params, context, executemany):
        text = " ".join(str(sql).split())
        if autocommit(conn):
            seen["failed_outside"] = False
            if not text.upper().startswith(_READ_ONLY):
                seen["autocommit"].append(text)
        elif "alembic_version" in text or not text.upper().startswith(_READ_ONLY):
            in_transaction.append(text)

    def commit(conn):
        stamps = [i for i, text in enumerate(in_transaction) if "alembic_version" in text]
        if stamps:  # work up to the stamp belongs to a recorded revision
            seen["stamped"] = True
            seen["autocommit"] = in_transaction[stamps[-1] + 1:]
        else:
            seen["autocommit"] += in_transaction
        in_transaction.clear()

    def rollback(conn):
        in_transaction.clear()

    hooks = [("before_cursor_execute", before), ("after_cursor_execute", after),
             ("commit", commit), ("rollback", rollback)]
    for name, hook in hooks:
        sa.event.listen(engine, name, hook)
    try:
        yield seen
    finally:
        for name, hook in hooks:
            sa.event.remove(engine, name, hook)


_BACKENDS = {"mysql": "MySQL/MariaDB", "mariadb": "MariaDB"}


def _at(revisions):
    return ", ".join(revisions) if revisions else "base (no revision)"


def _shown(statements):
    more = f" and {len(statements) - 2} more" if len(statements) > 2 else ""
    return "; ".join(s[:80] for s in statements[:2]) + more


def _between(directory, upper, lower):
    """Revisions above `lower` up to and including `upper`, oldest first."""
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
    committed = seen.get("autocommit", [])
    outside = ("the failed statement ran in an autocommit_block, outside any transaction: "
               "nothing rolled back what it left") if seen.get("failed_outside") else ""
    if before == after:
        verb = "applied" if direction == "upgrade" else "undone"
        text = f"Nothing was {verb}; the database is still at {_at(after)}"
        notes = [f"but its autocommit_block committed: {_shown(committed)}"] if committed else []
        notes += [outside] if outside else []
        return text + (f" ({'; '.join(notes)})" if notes else "")
    if not seen.get("stamped", True):
        # it committed no stamp, yet alembic_version moved: another process's upgrade
        # (replicas that each run `flask db upgrade` at boot)
        return (f"Another session moved the database from {_at(before)} to {_at(after)} while "
                f"this command ran (two upgrades at once); this command's own work was rolled back"
                + (f", but its autocommit_block committed: {_shown(committed)}" if committed else ""))
    if direction == "upgrade":
        moved = _between(directory, after, before)
        verb = "committed"
    else:
        moved = _between(directory, before, after)
        verb = "undone and committed"
    why = "autocommit_block" if seen.get("blocks") else "transaction_per_migration"
    if committed:
        why += f"; it also committed: {_shown(committed)}"
    names = ", ".join(moved) or "part of the work"
    return (f"{names} {'was' if len(moved) <= 1 else 'were'} {verb} before the failure "
            f"({why}); the database is now at {_at(after)}" + (f"; {outside}" if outside else ""))


@contextlib.contextmanager
def reported(app, direction, directory):
    """Run a `flask db upgrade|downgrade` body; turn its driver error into one true line."""
    with app.app_context():
        engine = crm.db.engine
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
        except CompileError as exc:  # a statement SQLAlchemy cannot write: a nameless DROP CONSTRAINT
            after = applied(url)
            backend = sa.engine.make_url(url).get_backend_name()
            told = story(direction, before, after, seen, directory, backend)
            raise LabError(f"CompileError: {exc}. {told}.") from None
