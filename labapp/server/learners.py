"""Who the kit runs for: a named learner gets databases of their own.

On a JupyterHub the hub sets JUPYTERHUB_USER for each learner's server, its
kernels and every `!` shell; any other host can set LABAPP_LEARNER (it wins).
Then every database a lab creates starts with the learner's cleaned name:

    alice__lab01, alice__lab03_solutions_replay, ...

so a room can share one PostgreSQL server. Outside a hub nothing changes
(`lab01`). nbval's sanitize file (tests/sanitize.cfg, `learner-namespace`)
removes the `alice__` part, so stored outputs hold for everyone.
"""
import hashlib
import re

from labapp import settings
from labapp.server import database
from labapp.errors import LabError

SEPARATOR = "__"  # alice__lab01; a cleaned name never holds two underscores in a row
MAX_LENGTH = 24   # leaves room for the longest lab database (lab03_solutions_replay) in 63 bytes
PG_IDENTIFIER_BYTES = 63


def clean(raw):
    """A learner's name as the kit spells it in database and role names:
    lowercase ASCII letters, digits and single underscores, at most 24 characters.

    A name that had to change (`Jane.Doe`, an e-mail address, a long name) gets
    a short hash of the original, so two different names never clean to one."""
    raw = str(raw).strip()
    if not raw:
        raise LabError("a learner's name cannot be empty")
    name = re.sub(r"[^a-z0-9]+", "_", raw.lower()).strip("_") or "learner"
    if name == raw and len(name) <= MAX_LENGTH:
        return name
    tag = hashlib.sha256(raw.encode()).hexdigest()[:6]
    return f"{name[:MAX_LENGTH - len(tag) - 1].rstrip('_')}_{tag}"


def current():
    """The cleaned name of the learner the kit runs for, or None."""
    raw = settings.learner()
    return clean(raw) if raw else None


def namespaced(database, learner):
    """`database` in `learner`'s namespace (already cleaned; None: no namespace)."""
    if not learner:
        return database
    name = f"{learner}{SEPARATOR}{database}"
    if len(name.encode()) > PG_IDENTIFIER_BYTES:
        raise LabError(f"database name {name!r} is longer than PostgreSQL's "
                       f"{PG_IDENTIFIER_BYTES} bytes: use a shorter lab suffix")
    return name


def owner(database):
    """The learner whose namespace `database` is in (None: no namespace)."""
    learner, separator, rest = database.partition(SEPARATOR)
    return learner if separator and rest else None


def create_database(url):
    """CREATE DATABASE for the learner the kit runs for: when they are named, a room's
    shared server may hold others' databases, so theirs is closed to everyone else."""
    return database.create_database(url, private=current() is not None)
