"""A room on one PostgreSQL server: one role per learner, databases of their own.

    flask --app labapp room prepare alice bob carol --out room.json
    flask --app labapp room drop alice bob carol --yes       # after the workshop

DATABASE_URL names the server and a role that may create roles (the
instructor's). Each learner gets a role named after them (labapp.server.learners:
cleaned) with LOGIN and CREATEDB, and a URL with that role: the hub gives each
learner their own (tools/hub/jupyterhub_config.py reads the file). The
databases a learner's labs create (alice__lab01, ...) are owned by that role
and closed to everyone else (the kit revokes CONNECT from PUBLIC on them), so
nobody can read, reset or drop another learner's work.
"""
import json
import os
import secrets
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from labapp.server import config, database, learners
from labapp import settings
from labapp.errors import LabError


def _admin():
    if not settings.database_url():
        raise LabError("set DATABASE_URL to the room's PostgreSQL server, as a role that "
                       "may create roles (e.g. postgres)")
    url = make_url(config.database_url("postgres"))
    if url.get_backend_name() != "postgresql":
        raise LabError("a room needs a PostgreSQL server")
    return url


def _quote(conn, name):
    return conn.dialect.identifier_preparer.quote(name)


def databases_of(conn, learner):
    """The databases in `learner`'s namespace (cleaned name)."""
    rows = conn.execute(sa.text("SELECT datname FROM pg_database WHERE starts_with(datname, :p)"
                                " ORDER BY 1"), {"p": learner + learners.SEPARATOR})
    return [name for (name,) in rows]


def _learner_roles(conn, names):
    """{name: role}; refuses, before any change, a name whose role runs the server."""
    roles = {name: learners.clean(name) for name in names}
    admins = {r for (r,) in conn.execute(sa.text(
        "SELECT rolname FROM pg_roles WHERE (rolsuper OR rolcreaterole OR rolname = current_user)"
        " AND rolname = ANY(:roles)"), {"roles": list(roles.values())})}
    if admins:
        raise LabError(f"learner names {sorted(n for n, r in roles.items() if r in admins)} would be "
                       "roles that administer this server: pick other names (nothing was changed)")
    return roles


def prepare(names, out=None):
    """Create (or refresh) each learner's role; returns {name: {"role", "url"}}.
    Passwords already in `out` are kept, so URLs handed out stay valid."""
    admin = _admin()
    known = json.loads(Path(out).read_text())["learners"] if out and Path(out).exists() else {}
    room = {}
    engine = database.server_engine(admin)
    with database.friendly_errors(admin), engine.connect() as conn:
        for name, role in _learner_roles(conn, names).items():
            password = known.get(name, {}).get("password") or secrets.token_urlsafe(12)
            exists = conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(sa.text(f"{verb} ROLE {_quote(conn, role)} LOGIN CREATEDB NOCREATEROLE "
                                 f"NOSUPERUSER PASSWORD :pw"), {"pw": password})
            for db in databases_of(conn, role):  # made before the room had roles
                conn.execute(sa.text(f"ALTER DATABASE {_quote(conn, db)} OWNER TO {_quote(conn, role)}"))
                conn.execute(sa.text(f"REVOKE CONNECT, TEMPORARY ON DATABASE {_quote(conn, db)} FROM PUBLIC"))
            url = admin.set(username=role, password=password, database="postgres")
            room[name] = {"role": role, "password": password,
                          "url": url.render_as_string(hide_password=False)}
    if out:
        Path(out).write_text(json.dumps({"server": database.describe(admin), "learners": room}, indent=2))
        os.chmod(out, 0o600)  # it holds passwords
    return room


def drop(names):
    """Drop each learner's databases and role. Returns {name: [dropped databases]}."""
    admin = _admin()
    dropped = {}
    engine = database.server_engine(admin)
    with database.friendly_errors(admin), engine.connect() as conn:
        for name, role in _learner_roles(conn, names).items():
            dropped[name] = databases_of(conn, role)
            for db in dropped[name]:
                conn.execute(sa.text(f"DROP DATABASE {_quote(conn, db)} WITH (FORCE)"))
            conn.execute(sa.text(f"DROP ROLE IF EXISTS {_quote(conn, role)}"))
    return dropped
