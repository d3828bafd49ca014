"""Server-level chores: create and drop databases, and readable DB errors."""
import contextlib
import os

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, NoSuchModuleError

from labapp.errors import LabError


def describe(url):
    """A URL safe to print: no password, and a socket dir said in words."""
    url = make_url(url)
    if "host" in url.query:  # a unix socket, e.g. the embedded server
        url = url.set(query={})
        return url.render_as_string(hide_password=True) + " (unix socket)"
    return url.render_as_string(hide_password=True)


def short_reason(exc):
    """The first line of a driver error, without SQLAlchemy's decorations."""
    orig = getattr(exc, "orig", None) or exc
    args = getattr(orig, "args", ())
    # PyMySQL errors are (code, message) tuples
    text = str(args[1]) if len(args) == 2 and isinstance(args[0], int) else str(orig)
    for line in text.strip().splitlines():
        line = line.strip()
        if line and not line.startswith("(Background on"):
            return line.replace("FATAL:  ", "").removeprefix("ERROR:  ")
    return type(orig).__name__


def failed_statement(exc):
    """`DuplicateObject: type "x" already exists [SQL: CREATE TYPE x ...]` for a driver error."""
    sql = " ".join(str(exc.statement or "").split())
    if len(sql) > 160:
        sql = sql[:157] + "..."
    return f"{type(exc.orig).__name__}: {short_reason(exc)} [SQL: {sql}]"


@contextlib.contextmanager
def friendly_errors(url):
    """Turn a failed connection or statement into one line that says what to do."""
    try:
        yield
    except DBAPIError as exc:
        if exc.connection_invalidated or isinstance(exc, sa.exc.OperationalError):
            reason = short_reason(exc)
            raise LabError(f"cannot use {describe(url)}: {reason}{_connection_hint(reason)}") from None
        raise LabError(failed_statement(exc)) from None
    except NoSuchModuleError as exc:
        raise LabError(f"no driver for {describe(url)}: {exc}") from None


def _connection_hint(reason):
    if "does not exist" in reason or "Unknown database" in reason:
        return " (run `flask createdb` first)"
    if "password" in reason or "Access denied" in reason:
        return " (check the user and password in DATABASE_URL)"
    if "Connection refused" in reason or "timeout" in reason or "translate host" in reason:
        return " (is the server running? check the host and port in DATABASE_URL)"
    return ""


def libpq_environment(url):
    """The PG* variables that point a libpq client (`psql`, `pg_dump`) at `url`'s
    database as the app sees it: {} for a server that is not PostgreSQL."""
    url = make_url(url)
    if url.get_backend_name() != "postgresql":
        return {}
    host = url.query.get("host") or url.host  # the embedded server: a socket folder
    if isinstance(host, tuple):  # ?host=a&host=b: libpq takes them as one list
        host = ",".join(host)
    found = {"PGHOST": host, "PGPORT": str(url.port or 5432), "PGUSER": url.username,
             "PGPASSWORD": url.password, "PGDATABASE": url.database,
             "PGSSLMODE": url.query.get("sslmode")}
    return {name: value for name, value in found.items() if value}


def quick_engine(url):
    """An engine for a few statements: no pool, and a server that does not answer
    fails in seconds (SQLite takes no connect timeout)."""
    url = make_url(url)
    args = {} if url.get_backend_name() == "sqlite" else {"connect_timeout": 5}
    return sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args=args)


def server_engine(url):
    """An engine on the server's maintenance database, to create or drop `url`'s."""
    url = make_url(url)
    # PostgreSQL's maintenance database; MySQL's always-present schema
    maintenance = "postgres" if url.get_backend_name() == "postgresql" else "information_schema"
    return quick_engine(url.set(database=maintenance)).execution_options(
        isolation_level="AUTOCOMMIT")


def _exists(conn, url):
    name = make_url(url).database
    if make_url(url).get_backend_name() == "postgresql":
        query = sa.text("SELECT 1 FROM pg_database WHERE datname = :name")
    else:
        query = sa.text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :name")
    return conn.execute(query, {"name": name}).first() is not None


def _quoted(engine, url):
    return engine.dialect.identifier_preparer.quote(make_url(url).database)


def create_database(url, private=False):
    """CREATE DATABASE for `url`. Returns False when SQLite needs none. `private`
    (PostgreSQL): only its owner (and the server's administrators) may connect."""
    if make_url(url).get_backend_name() == "sqlite":
        return False
    if not make_url(url).database:
        raise LabError(f"DATABASE_URL names no database: {describe(url)}")
    engine = server_engine(url)
    with friendly_errors(engine.url), engine.connect() as conn:
        if _exists(conn, url):
            raise LabError(
                f"database {make_url(url).database!r} already exists: nothing to do "
                "(run `flask dropdb` first to start from scratch)"
            )
        conn.execute(sa.text(f"CREATE DATABASE {_quoted(engine, url)}"))
        if private and engine.dialect.name == "postgresql":
            conn.execute(sa.text(f"REVOKE CONNECT, TEMPORARY ON DATABASE {_quoted(engine, url)} FROM PUBLIC"))
    return True


def drop_database(url, missing_ok=False):
    """DROP DATABASE for `url`, closing other sessions on it (PostgreSQL 13+)."""
    if make_url(url).get_backend_name() == "sqlite":
        path = make_url(url).database
        if path and os.path.exists(path):
            os.remove(path)
            return True
        if missing_ok:
            return False
        raise LabError(f"no SQLite file {path!r} to drop")
    engine = server_engine(url)
    with friendly_errors(engine.url), engine.connect() as conn:
        if not _exists(conn, url):
            if missing_ok:
                return False
            raise LabError(f"database {make_url(url).database!r} does not exist: nothing to drop")
        force = " WITH (FORCE)" if engine.dialect.name == "postgresql" else ""
        conn.execute(sa.text(f"DROP DATABASE {_quoted(engine, url)}{force}"))
    return True


def database_exists(url):
    engine = server_engine(url)
    with friendly_errors(engine.url), engine.connect() as conn:
        return _exists(conn, url)
