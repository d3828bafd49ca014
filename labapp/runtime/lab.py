"""Notebook runtime: what every lab's first cell calls.

    lab02 = lab.setup("lab02")

resets the lab's database and workspace folder to the lab's start (as
`labapp.runtime.labs` describes it) and moves the kernel into the workspace, so a lab
runs alone, twice, in any order and beside the others, and shows the same
outputs each time. A notebook in notebooks/solutions/ is the lab's solved
copy: it gets a database and workspace of its own (lab02_solutions).

Until a lab's setup cell has finished, its other cells do not run: each
stops with one line that says to run the setup cell (a failed setup left the
kernel outside the workspace, where `!git init` or `!flask db init` would
write into notebooks/). Every kernel of the kit's venv loads this module as
an IPython extension (tools/ipython_kernel_config.py, which `make venv` puts in
the venv), so the guard holds from the kernel's start in a folder of labs.

`python -m labapp.runtime.lab lab02` (what `make reset LAB=lab02` runs) does the same
reset from a terminal.
"""
import difflib
import functools
import os
import re
import sys
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from labapp import errors, settings
from labapp.runtime import brownfield, labs, selfcheck, workspace
from labapp.server import config, database, learners, pgserver, processes
from labapp.errors import LabError

CLONE_NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"  # the labs, in a clone of the kit

# a fixed author, clock and no personal settings (signing, hooks, colours) for the
# labs that commit with git: every run makes the same commits on every machine
GIT_CONFIG = """[user]
\tname = Lab {number}
\temail = lab{number}@example.com
[color]
\tui = never
[commit]
\tgpgsign = false
[init]
\tdefaultBranch = main
"""
GIT_CLOCK = {"GIT_AUTHOR_DATE": "2026-11-01T09:00:00Z", "GIT_COMMITTER_DATE": "2026-11-01T09:00:00Z"}


class Lab:
    """One copy of a lab at run time: its database (and siblings) and its workspace."""

    def __init__(self, spec, solutions=False, notebooks=CLONE_NOTEBOOKS, suffix="", learner=None):
        self.spec, self.solutions, self.notebooks = spec, solutions, Path(notebooks)
        self.name = spec.name
        # a named learner's databases carry their name (labapp.server.learners)
        self.learner = learner or learners.current()
        self.database = spec.database(solutions, suffix, self.learner)
        self.workspace = self.notebooks / "workspaces" / spec.workspace(solutions)

    @functools.cached_property
    def url(self):
        """SQLAlchemy URL of this lab's database (it may hold a local path: don't print it)."""
        return config.database_url(self.database)

    def sibling(self, suffix):
        """Another database of this lab, e.g. lab 03's scratch copy: lab03.sibling("_replay")."""
        return Lab(self.spec, self.solutions, self.notebooks, suffix, self.learner)

    def reset(self):
        """The lab's databases dropped (its own re-created if the lab starts with
        one) and its workspace rebuilt, after stopping any app server an earlier
        run of the lab left serving from it (labapp.server.processes)."""
        processes.end(self.workspace)
        for suffix in self.spec.more_databases:
            database.drop_database(self.sibling(suffix).url, missing_ok=True)
        database.drop_database(self.url, missing_ok=True)
        if self.spec.createdb:
            learners.create_database(self.url)
        workspace.build(self.workspace, self.spec)
        if self.spec.brownfield:
            brownfield.build(self)
        selfcheck.record_file(self.workspace).unlink(missing_ok=True)  # a fresh lab: no verdicts
        if self.spec.git:
            self.git_config.write_text(GIT_CONFIG.format(number=self.name.removeprefix("lab")))
        return self

    def resumable(self):
        """Is there work of an earlier kernel to continue: the workspace, and the
        lab's database if the lab starts with one?"""
        if not self.workspace.is_dir() or not any(self.workspace.iterdir()):
            return False
        return not self.spec.createdb or database.database_exists(self.url)

    def resume(self):
        """Keep the workspace and databases as they are; only app servers an
        earlier kernel left serving from the workspace are stopped (the lab's cells
        start their own)."""
        processes.end(self.workspace)
        if self.spec.git and not self.git_config.exists():
            self.git_config.write_text(GIT_CONFIG.format(number=self.name.removeprefix("lab")))
        return self

    @property
    def git_config(self):
        return self.workspace.with_name(self.workspace.name + ".gitconfig")

    def server(self):
        """One short line: which server, without paths or passwords."""
        url = make_url(self.url)
        engine = database.server_engine(url)
        with database.friendly_errors(url), engine.connect() as conn:
            version = conn.exec_driver_sql("SELECT version()").scalar()
        # "PostgreSQL 18.6 on x86_64..." -> "PostgreSQL 18.6"; "10.11.19-MariaDB-..." -> "MariaDB 10.11.19"
        match = re.match(r"(PostgreSQL [\d.]+)|([\d.]+)-MariaDB", version)
        version = match.group(1) or f"MariaDB {match.group(2)}" if match else version.split()[0]
        if settings.database_url():
            return f"{version} at {url.host or 'a local socket'} (DATABASE_URL)"
        return f"{version}, embedded"

    def edit(self, path, old, new):
        """Change the one place where `old` stands in the workspace file `path` to
        `new`, and print the change as a unified diff (what `git diff` shows).
        Write both as triple-quoted blocks; a block's first newline is dropped:

            lab04.edit("models.py", \"\"\"
                GBP = 3
            \"\"\", \"\"\"
                GBP = 3
                BTC = 4
            \"\"\")
        """
        file = self.workspace / path
        text = file.read_text()
        old, new = old.removeprefix("\n"), new.removeprefix("\n")
        found = text.count(old)
        if found != 1:
            raise LabError(f"{path}: the text to change stands {found} times, not once: "
                           f"{old.strip().splitlines()[0] if old.strip() else repr(old)!r}...")
        changed = text.replace(old, new)
        file.write_text(changed)
        print("".join(difflib.unified_diff(text.splitlines(keepends=True),
                                           changed.splitlines(keepends=True),
                                           f"a/{path}", f"b/{path}", n=1)), end="")

    def quiet_alembic_logging(self, ini="migrations/alembic.ini"):
        """Lab 01's edit of a new alembic.ini, for a lab that runs `flask db init`
        itself: Alembic's notes that teach nothing at WARN (workspace.QUIET_LOGGERS)."""
        workspace.quiet_alembic_logging(self.workspace / ini)
        print(f"{ini}: lab 01's edit, the autogenerate plugin and sequence notes at WARN")

    def sql(self, query, autocommit=False, **params):
        """Run one statement on the lab's database (committed); its rows, if any.
        autocommit=True: outside any transaction (what CONCURRENTLY needs)."""
        engine = database.quick_engine(self.url)
        run = engine.execution_options(isolation_level="AUTOCOMMIT") if autocommit else engine
        try:
            with database.friendly_errors(self.url), run.begin() as conn:
                result = conn.execute(sa.text(query), params)
                return result.all() if result.returns_rows else []
        finally:
            engine.dispose()


# -- setup(): the lab's first cell ------------------------------------------------------

_notebook_folder = None  # where the kernel started: setup() moves it into the workspace


_set_up_here = set()  # the workspaces whose setup ran in this kernel


def setup(name, fresh=False):
    """Lab `name`'s database and workspace, and work from the workspace.

    Work from an earlier kernel (the learner's server restarted, the culler stopped
    it, the laptop slept) is kept: the workspace's files and the lab's databases stay
    as they were, and the lab continues. It starts over (database dropped and made
    again, workspace rebuilt) when there is nothing to keep, when `fresh=True`, when
    this kernel already set the lab up (running the lab again from the top), or
    under LABAPP_FRESH=1 (the test runners: stored outputs come from a fresh lab)."""
    global _notebook_folder, _setup
    _show_errors_in_one_line()
    _guard_later_cells()
    _setup = "failed"  # until the last line below
    spec, _ = labs.get(name)
    _notebook_folder = _notebook_folder or Path.cwd()
    solutions = _notebook_folder.name == labs.SOLUTIONS and spec.exercises
    notebooks = _notebook_folder.parent if solutions else _notebook_folder
    lab = Lab(spec, solutions, notebooks)
    _prepare_shell(lab)
    _close_sql_sessions()  # the reset drops the databases they are on
    keep = not (fresh or settings.fresh_labs() or str(lab.workspace) in _set_up_here) and lab.resumable()
    lab.resume() if keep else lab.reset()
    _set_up_here.add(str(lab.workspace))
    os.chdir(lab.workspace)
    selfcheck.record_into(lab.workspace)  # for `flask room progress`
    _load_sql_magic(lab.url if spec.createdb else None)
    workspace_name = lab.workspace.relative_to(notebooks).as_posix()
    if keep:
        print(f"Lab {name}: continuing as you left it: database {lab.database!r}, workspace "
              f"{workspace_name}/ (to start over: lab.setup({name!r}, fresh=True))")
    else:
        fresh_db = "fresh database" if spec.createdb else "no database yet"
        print(f"Lab {name}: {fresh_db} {lab.database!r}, fresh workspace {workspace_name}/")
    print(f"Server: {lab.server()}")
    _setup = "done"
    return lab


# -- until the setup cell has run, the lab's other cells do not -----------------------

def _shell():
    """This kernel's IPython shell (None outside one)."""
    from IPython import get_ipython  # IPython: only in a kernel (`make reset` needs none)

    return get_ipython()


_setup = None  # None: not run in this kernel; "failed"; "done"
_SETUP_CALL = re.compile(r"\blab\.setup\(")


def _guard(lines):
    """IPython input transformer: a cell that is not the setup cell becomes one
    line of error while the setup has not finished in this kernel."""
    if _setup == "done" or any(_SETUP_CALL.search(line) for line in lines):
        return lines
    if _setup == "failed":
        why = ("the setup cell did not finish (its error says why): fix that and run it "
               "again; this cell did not run")
    else:
        why = ("run the lab's setup cell first (the first code cell: lab.setup(...)); "
               "this cell did not run")
    return [f"from labapp.errors import LabError as _LabError; raise _LabError({why!r})\n"]


def _guard_later_cells():
    shell = _shell()
    if shell is not None and _guard not in shell.input_transformers_post:
        shell.input_transformers_post.append(_guard)


def _in_a_labs_folder():
    """Does this kernel serve a lab? JupyterLab names the notebook (JPY_SESSION_NAME);
    otherwise (nbval, nbclient) the kernel works in the notebook's folder."""
    notebook = settings.notebook_session()
    if notebook:
        return labs.for_notebook(notebook)[0] is not None
    return any((Path.cwd() / spec.notebook).exists() for spec in labs.LABS)


def load_ipython_extension(shell):
    """A kernel of the kit's venv (tools/ipython_kernel_config.py) that starts in a
    folder of labs holds every cell until the lab's setup cell has run."""
    if _in_a_labs_folder():
        _show_errors_in_one_line()
        _guard_later_cells()


def _prepare_shell(lab):
    """What the lab's `!` commands need from this kernel's environment."""
    # `!flask` in a cell must find this kernel's venv, not another install, and
    # `!psql` the wheel's bundled client (one version and its messages, on any server)
    client = pgserver.client_bin_dir()
    first = [os.path.dirname(sys.executable), *([str(client)] if client else [])]
    rest = [p for p in os.environ["PATH"].split(os.pathsep) if p not in first]
    os.environ["PATH"] = os.pathsep.join(first + rest)
    os.environ.pop("FLASK_APP", None)  # let `flask` find the workspace's app.py
    os.environ["LABAPP_DATABASE"] = lab.database  # ... and use the lab's database
    os.environ.update(database.libpq_environment(lab.url))  # `!psql` as well
    # `!git` in a workspace without its own .git must not fall through to the
    # kit's repository above it (a commit there would land in the learner's clone)
    os.environ["GIT_CEILING_DIRECTORIES"] = str(lab.workspace.parent)
    if lab.spec.git:
        os.environ.update(GIT_CLOCK, GIT_CONFIG_GLOBAL=str(lab.git_config),
                          GIT_CONFIG_NOSYSTEM="1",
                          # no __pycache__/ folders: git leaves them behind when it
                          # removes a tracked migrations/ on a branch switch
                          PYTHONDONTWRITEBYTECODE="1")


def _show_errors_in_one_line():
    """In a kernel, a LabError from any cell shows as `Error: ...`, not a traceback
    (LABAPP_DEBUG=1: the traceback). IPython's own hook for custom exceptions."""
    shell = _shell()
    if shell is None or errors.debugging():
        return

    def one_line(shell, etype, value, tb, tb_offset=None):
        lines = value.lines()
        shell._showtraceback(etype, value, lines)
        return lines

    shell.set_custom_exc((LabError,), one_line)


def _close_sql_sessions():
    """Close the sessions `%sql` (ipython-sql) keeps open: a reset drops their
    databases, which ends them, and ipython-sql would reuse a dead one."""
    try:
        from sql.connection import Connection  # ipython-sql: only in a kernel that loaded it
    except ImportError:
        return
    for session in Connection.connections.values():
        # closed without the ROLLBACK a close sends, which fails on a session already ended
        session.internal_connection.invalidate()
        session.internal_connection.engine.dispose()
    Connection.connections.clear()
    Connection.current = None


def _load_sql_magic(url=None):
    """Load ipython-sql and point `%sql` at the lab's database, if given."""
    shell = _shell()
    if shell is None:
        return
    if "sql" not in shell.extension_manager.loaded:
        shell.run_line_magic("load_ext", "sql")
    shell.run_line_magic("config", "SqlMagic.displaycon = False")  # hides the socket path
    if url:
        shell.run_line_magic("sql", url)


# -- `make reset LAB=lab02`: the setup cell's reset, without a kernel ---------------

def reset(name, notebooks=None):
    """Put lab `name` ("lab02", or "lab02_solutions" for the solved copy) back to
    its start. A kernel working in the lab should then run its setup cell again,
    since its folder was replaced."""
    spec, solutions = labs.get(name)
    lab = Lab(spec, solutions, notebooks or CLONE_NOTEBOOKS).reset()
    workspace = lab.workspace.relative_to(lab.notebooks).as_posix()
    print(f"Lab {lab.name}: reset database {lab.database!r} and workspace {workspace}/")
    return lab


@errors.boundary
def main(argv=None):
    """python -m labapp.runtime.lab LABNAME: reset one lab (what `make reset LAB=...` runs)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: make reset LAB=lab02   (or: python -m labapp.runtime.lab lab02; "
              "lab02_solutions for the solved copy)", file=sys.stderr)
        return 2
    reset(args[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
