"""Notebook runtime: what every lab's first cell calls.

`setup("lab01")` gives the lab its own database and workspace folder, both
reset to the starting state, so a lab runs alone, twice, in any order and
in parallel with the others, and shows the same outputs each time.
"""
import os
import re
import shutil
import sys
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from labapp import config, database

KIT = Path(__file__).resolve().parent
WORKSPACES = KIT.parent / "notebooks" / "workspaces"
STARTER_FILES = {"app.py": KIT / "starter" / "app.py", "models.py": KIT / "models.py"}
# what lab 01 ends with: `migrations/` holding revision 0001 (fixed downgrade)
STARTER_MIGRATIONS = KIT / "starter" / "migrations"
SAMPLE_DATA = KIT / "data" / "sample"
# a kernel started in notebooks/solutions/ runs a solution copy of a lab:
# it gets its own database and workspace, so both copies can run at once
_SOLUTIONS = Path.cwd().name == "solutions"


class Lab:
    def __init__(self, name):
        self.name = name
        self.database = f"{name}_solutions" if _SOLUTIONS else name
        self.workspace = WORKSPACES / self.database

    @property
    def url(self):
        """SQLAlchemy URL of the lab's database (it holds a local path)."""
        return config.database_url()

    def reset_database(self, create=True):
        database.drop_database(self.url, missing_ok=True)
        if create:
            database.create_database(self.url)

    def reset_workspace(self, migrations=False, data=False):
        if self.workspace.exists():
            shutil.rmtree(self.workspace)
        self.workspace.mkdir(parents=True)
        for name, source in STARTER_FILES.items():
            shutil.copyfile(source, self.workspace / name)
        if migrations:
            shutil.copytree(STARTER_MIGRATIONS, self.workspace / "migrations",
                            ignore=shutil.ignore_patterns("__pycache__"))
        if data:
            shutil.copytree(SAMPLE_DATA, self.workspace / "DATA")

    def server(self):
        """One short line: which server, without paths or passwords."""
        url = make_url(self.url)
        engine = database.server_engine(url)
        with database.friendly_errors(url), engine.connect() as conn:
            version = conn.exec_driver_sql("SELECT version()").scalar()
        # "PostgreSQL 18.6 on x86_64..." -> "PostgreSQL 18.6"; "10.11.19-MariaDB-..." -> "MariaDB 10.11.19"
        match = re.match(r"(PostgreSQL [\d.]+)|([\d.]+)-MariaDB", version)
        version = match.group(1) or f"MariaDB {match.group(2)}" if match else version.split()[0]
        if os.environ.get("DATABASE_URL"):
            return f"{version} at {url.host or 'a local socket'} (DATABASE_URL)"
        return f"{version}, embedded"

    def sql(self, query, **params):
        """Run one query on the lab's database and return all rows."""
        engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
        with engine.begin() as conn:
            return conn.execute(sa.text(query), params).all()


def _load_sql_magic(url=None):
    """Load ipython-sql and point `%sql` at the lab's database, if given."""
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        return
    if "sql" not in shell.extension_manager.loaded:
        shell.run_line_magic("load_ext", "sql")
    shell.run_line_magic("config", "SqlMagic.displaycon = False")  # hides the socket path
    if url:
        shell.run_line_magic("sql", url)


def setup(name, createdb=True, migrations=False, data=False):
    """Reset lab `name`'s database and workspace, and work from the workspace.

    createdb=False: only drop the database (the lab creates it).
    migrations=True: start with lab 01's `migrations/` (revision 0001),
    not yet applied: the lab runs `!flask db upgrade` itself.
    data=True: copy the sample DATA/ folder (for `!flask loaddata`)."""
    # `!flask` in a cell must find this kernel's venv, not another install
    bin_dir = os.path.dirname(sys.executable)
    if not os.environ["PATH"].startswith(bin_dir + os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ["PATH"]
    os.environ.pop("FLASK_APP", None)  # let `flask` find the workspace's app.py
    lab = Lab(name)
    os.environ["LABAPP_DATABASE"] = lab.database
    lab.reset_database(createdb)
    lab.reset_workspace(migrations, data)
    os.chdir(lab.workspace)
    _load_sql_magic(lab.url if createdb else None)
    workspace = lab.workspace.relative_to(KIT.parent / "notebooks")
    fresh = "fresh database" if createdb else "no database yet"
    print(f"Lab {name}: {fresh} {lab.database!r}, fresh workspace {workspace}/")
    print(f"Server: {lab.server()}")
    return lab
