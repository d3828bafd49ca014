"""One place decides which database the app talks to."""
import os

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

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
    import re

    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", raw)


def from_environment():
    """Flask config from the environment (and a .env file, if any)."""
    settings = {"SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True}}
    raw = os.environ.get("DATABASE_URL", "").strip()
    lab_database = os.environ.get("LABAPP_DATABASE")
    if raw:
        url = normalize_url(raw)
        if lab_database and url.get_backend_name() != "sqlite":
            url = url.set(database=lab_database)  # a lab's own database on that server
        settings["SQLALCHEMY_DATABASE_URI"] = url.render_as_string(hide_password=False)
        if url.get_backend_name() != "sqlite":
            # a host that does not answer should fail in seconds, not minutes
            key = "connect_timeout"
            settings["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"] = {key: 5}
    return settings


def embedded_database_url(database=None):
    """URL of `database` on the kit's embedded PostgreSQL (started if needed)."""
    from labapp import pgserver

    return pgserver.database_url(database or os.environ.get("LABAPP_DATABASE") or DEFAULT_DATABASE)


def database_url():
    """The URL the app would use, without building the app."""
    return from_environment().get("SQLALCHEMY_DATABASE_URI") or embedded_database_url()
