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

    def reset(self, createdb=True, migrations=False, data=False):
        """Both, as setup() describes; `flask` in this process then uses the lab's database."""
        os.environ["LABAPP_DATABASE"] = self.database
        self.reset_database(createdb)
        self.reset_workspace(migrations, data)
        return self

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
    # `!git` in a workspace without its own .git must not fall through to the
    # kit's repository above it (a commit there would land in the learner's clone)
    os.environ["GIT_CEILING_DIRECTORIES"] = str(WORKSPACES)
    lab = Lab(name).reset(createdb, migrations, data)
    os.chdir(lab.workspace)
    _load_sql_magic(lab.url if createdb else None)
    workspace = lab.workspace.relative_to(KIT.parent / "notebooks")
    fresh = "fresh database" if createdb else "no database yet"
    print(f"Lab {name}: {fresh} {lab.database!r}, fresh workspace {workspace}/")
    print(f"Server: {lab.server()}")
    return lab


# -- `make reset LAB=lab02`: the setup cell's reset, without a kernel ---------------

def setup_arguments(name, notebooks=KIT.parent / "notebooks"):
    """The keyword arguments lab `name`'s notebook passes to setup(), read
    from its setup cell, so each lab's flags are written down in one place."""
    import ast
    import json

    for path in sorted(notebooks.glob("[0-9][0-9]-*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            source = "".join(cell["source"])
            if cell["cell_type"] != "code" or "lab.setup(" not in source:
                continue
            try:
                tree = ast.parse(source)
            except SyntaxError:  # IPython syntax (`!`, `%`): not a setup cell
                continue
            for node in ast.walk(tree):
                if (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "setup"
                        and node.args and ast.literal_eval(node.args[0]) == name):
                    return {k.arg: ast.literal_eval(k.value) for k in node.keywords}
    from labapp.errors import LabError

    raise LabError(f"no notebook in {notebooks.name}/ calls lab.setup({name!r})")


def reset(name, notebooks=KIT.parent / "notebooks"):
    """Put lab `name`'s database and workspace back to its starting state
    (as its setup cell does). A kernel working in the lab should then run
    the setup cell again, since its folder was replaced."""
    options = setup_arguments(name, notebooks)
    lab = Lab(name).reset(options.get("createdb", True), options.get("migrations", False),
                          options.get("data", False))
    workspace = lab.workspace.relative_to(KIT.parent / "notebooks")
    print(f"Lab {name}: reset database {lab.database!r} and workspace {workspace}/")
    return lab


def main(argv=None):
    """python -m labapp.lab LABNAME: reset one lab (what `make reset LAB=...` runs)."""
    import click

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: make reset LAB=lab02   (or: python -m labapp.lab lab02)", file=sys.stderr)
        return 2
    try:
        reset(args[0])
    except click.ClickException as exc:
        print(f"Error: {exc.format_message()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
