"""One place decides which database the app talks to.

The server: DATABASE_URL if set, else the kit's embedded PostgreSQL.
The database on it: the one a caller names (`flask` commands: LABAPP_DATABASE,
which a lab's setup cell sets, so the lab's `!flask` commands use the lab's
database; see labapp.app), else the URL's own (embedded: `labapp`).
"""
import re

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from labapp import settings
from labapp.server import pgserver
from labapp.errors import LabError

DEFAULT_DATABASE = "labapp"

# The kit ships psycopg2 and PyMySQL; bare schemes would pick other drivers.
_DRIVERS = {
    "postgres": "postgresql+psycopg2",
    "postgresql": "postgresql+psycopg2",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}
_KNOWN_BACKENDS = ("postgresql", "mysql", "mariadb", "sqlite")


def normalize_url(raw):
    """Parse a DATABASE_URL, pick the kit's drivers, and fail in one line."""
    try:
        url = make_url(raw.strip())
    except (ArgumentError, ValueError):
        raise LabError(
            f"DATABASE_URL is not a database URL: {_mask(raw)!r}. "
            "Expected e.g. postgresql://user:password@localhost:5432/dbname"
        ) from None
    if url.get_backend_name() not in _KNOWN_BACKENDS:
        raise LabError(
            f"DATABASE_URL has an unsupported scheme {url.drivername!r}: "
            "use postgresql://, mysql:// (or mariadb://) or sqlite:///"
        )
    if url.drivername in _DRIVERS:
        url = url.set(drivername=_DRIVERS[url.drivername])
    return url


def _mask(raw):
    """Hide a password in a URL we could not parse."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", raw)


def database_url(database=None):
    """The SQLAlchemy URL (a string, password kept) of `database` on the kit's server
    (None: the server URL's own database)."""
    raw = settings.database_url()
    if not raw:
        return pgserver.database_url(database or DEFAULT_DATABASE)
    url = normalize_url(raw)
    if database and url.get_backend_name() != "sqlite":  # SQLite: the URL is the file
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


def engine_options(url):
    """SQLAlchemy engine options that suit the server at `url`."""
    options = {"pool_pre_ping": True}
    if make_url(url).get_backend_name() != "sqlite":
        # a host that does not answer should fail in seconds, not minutes
        options["connect_args"] = {"connect_timeout": 5}
    return options
