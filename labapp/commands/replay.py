"""`flask replay-production`: write the next migration on top of production's history.

Some teams keep `migrations/` only on the `production` branch (master ignores it).
To write the next revision by hand you would: switch to production, rebuild a
database from its migrations, load a production DATA snapshot, carry
`migrations/` over to master and run `flask db migrate` there (lab 03 walks
through it). The command does the same without touching your checkout's
branch or index, in two steps:

    with replay.planned(app, request) as plan:   # every check, no change
        print(plan)                              # what --dry-run prints
        result = replay.execute(app, plan)       # the work, undone on any failure

The plan reads production's `migrations/` with `git archive` into a temporary
folder (the gitrepo module) and checks DATA, the server and this checkout's
`migrations/`. The execution (re)creates a scratch database `<configured>_replay`
(the configured one with --into-configured), upgrades it to production's head,
loads DATA, puts production's `migrations/` here and autogenerates the new
revision against that replica. Any failure undoes what it did: the scratch
database is dropped and `migrations/` is put back as it was.
"""
import contextlib
import filecmp
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from flask import Flask
from sqlalchemy.engine import make_url

from labapp import crm
from labapp.commands import gitrepo
from labapp.crm import data
from labapp.server import database, learners
from labapp.errors import LabError

IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")


@dataclass(frozen=True)
class Request:
    """What the user asked for (the command's options)."""
    message: str = None
    rev_id: str = None
    data_dir: str = "DATA"
    branch: str = "production"
    into_configured: bool = False
    replace_migrations: bool = False


@dataclass(frozen=True)
class Plan:
    request: Request
    target_url: str       # the database to rebuild (password kept: never printed)
    source: Path          # production's migrations/, extracted
    here: Path            # this checkout's migrations/
    head: str
    revisions: int
    csv_files: int
    rows: int
    exists: bool          # the target database exists: drop and re-create it
    existing: bool        # this checkout has a migrations/ with files in it
    conflict: bool        # ... and it differs from production's

    @property
    def database(self):
        return make_url(self.target_url).database

    def __str__(self):
        r, name, folder = self.request, self.database, self.here.name
        if self.conflict:
            place = f"replace this checkout's {folder}/ with {r.branch}'s (--replace-migrations)"
        elif self.existing:
            place = f"keep this checkout's {folder}/ (the same as {r.branch}'s)"
        else:
            place = f"copy {r.branch}'s {folder}/ into this checkout"
        migrate_args = (f' -m "{r.message}"' if r.message else "") + (
            f" --rev-id {r.rev_id}" if r.rev_id else "")
        return "\n".join([
            f"Replaying branch {r.branch!r} into database {name!r}"
            f"{' (the configured one)' if r.into_configured else ''}:",
            f"  1. read {folder}/ from {r.branch} with git archive "
            f"({self.revisions} revision{'s' * (self.revisions != 1)}, head {self.head})",
            f"  2. {'drop and re-create' if self.exists else 'create'} database {name!r}",
            f"  3. upgrade it to {self.head}",
            f"  4. load {r.data_dir} ({self.csv_files} files, {self.rows} rows)",
            f"  5. {place}",
            f"  6. flask db migrate{migrate_args} against {name!r}",
        ])


@dataclass(frozen=True)
class Result:
    plan: Plan
    revision: Path        # the new revision, relative to the checkout (None: no change)
    warnings: list

    def __str__(self):
        plan, name = self.plan, self.plan.database
        lines = [f"Done: {name!r} holds production's schema ({plan.head}) and its data."]
        if self.revision is None:
            return "\n".join(lines + ["No new revision: your models match production's schema."])
        lines.append(f"New revision: {self.revision} (on top of {plan.head})")
        lines += [f"Warning: {note}" for note in self.warnings]
        apply = ("flask db upgrade" if plan.request.into_configured
                 else f"LABAPP_DATABASE={name} flask db upgrade")
        lines.append(f"Next: review {self.revision}, then try it on the replica: {apply}")
        return "\n".join(lines)


# -- the plan: every check, nothing changed -------------------------------------------

@contextlib.contextmanager
def planned(app, request, cwd=None):
    """The plan for `request` in checkout `cwd`; production's migrations/ is
    extracted into a temporary folder that lives as long as the `with`."""
    cwd = Path(cwd or Path.cwd())
    configured = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if configured.get_backend_name() == "sqlite":
        raise LabError("replay-production needs a database server (PostgreSQL), not SQLite: "
                       "set DATABASE_URL")
    target = configured if request.into_configured else configured.set(
        database=f"{configured.database}_replay")
    top, prefix = gitrepo.clean_checkout(cwd, request.branch)
    csv_files, rows = _check_data(request.data_dir)
    directory = app.extensions["migrate"].directory
    here = cwd / directory
    # named after the target database: a leftover (there should be none) says whose it is
    with tempfile.TemporaryDirectory(prefix=f"replay-production-{target.database}-") as tmp:
        source = gitrepo.extract_folder(top, prefix, request.branch, directory, tmp)
        if not (source / "env.py").is_file() or not (source / "versions").is_dir():
            raise LabError(f"{directory}/ on branch {request.branch!r} is not an Alembic "
                           "migrations folder (no env.py or versions/)")
        head, revisions = _head(source)
        existing = here.is_dir() and _has_files(here)
        conflict = existing and not _same_tree(here, source)
        if conflict and not request.replace_migrations:
            raise LabError(f"{directory}/ already exists here and differs from "
                           f"{request.branch}'s: move it away, or pass --replace-migrations "
                           "to replace it")
        target_url = target.render_as_string(hide_password=False)
        exists = database.database_exists(target_url)  # also: is the server reachable?
        yield Plan(request, target_url, source, here, head, revisions, len(csv_files), rows,
                   exists, existing, conflict)


def _check_data(data_dir):
    """Parse every CSV now, so a malformed file fails before any database work."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise LabError(f"no DATA folder at {data_dir}: make one on production with "
                       f"`flask dumpdata {data_dir}` (or pass --data DIR)")
    files = sorted(data_dir.glob("*.csv"))
    if not files:
        raise LabError(f"no .csv files in {data_dir}: expected one file per table")
    return files, sum(len(data.read_csv(path)[1]) for path in files)


def _head(directory):
    script = ScriptDirectory(str(directory))
    try:
        heads = script.get_heads()
        count = len(list(script.walk_revisions()))
    except CommandError as exc:
        raise LabError(f"production's migrations/: {exc}") from None
    if len(heads) != 1:
        raise LabError(f"production's migrations/ has {len(heads)} heads "
                       f"({', '.join(sorted(heads))}): merge them there first (`flask db merge heads`)")
    return heads[0], count


def _files(root):
    return {p.relative_to(root) for p in Path(root).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def _same_tree(a, b):
    """Do two folders hold the same files (ignoring Python caches)?"""
    names = _files(a)
    return names == _files(b) and all(
        filecmp.cmp(Path(a) / n, Path(b) / n, shallow=False) for n in names)


def _has_files(folder):
    return bool(_files(folder))


# -- the execution: undone on any failure ------------------------------------------------

def execute(app, plan, echo=print):
    """Rebuild the replica, load DATA, place migrations/, write the new revision;
    `echo` hears of the rows loaded as soon as they are."""
    url, here = plan.target_url, plan.here
    backup = plan.source.parent / "previous-migrations"
    created = placed = False
    try:
        if plan.exists:
            database.drop_database(url)
        learners.create_database(url)
        created = True
        with _app_for(app, url) as replica:
            _alembic(replica, plan.source, _upgrade)
            loaded = _load(replica, plan.request.data_dir)
            echo(f"Loaded {plan.request.data_dir}: "
                 + ", ".join(f"{n} {t}" for t, n in loaded.items()))
            if plan.conflict:
                shutil.move(str(here), str(backup))
            if not plan.existing or plan.conflict:
                if here.exists():  # only caches in it
                    shutil.rmtree(here)
                shutil.copytree(plan.source, here, ignore=IGNORED)
                placed = True
            before = {p.name for p in (here / "versions").glob("*.py")}
            notes = _autogenerate(replica, here, plan.request)
    except BaseException:
        if created:
            with contextlib.suppress(Exception):
                database.drop_database(url, missing_ok=True)
        if placed:
            shutil.rmtree(here, ignore_errors=True)
        if backup.exists():
            shutil.move(str(backup), str(here))
        raise
    new = sorted({p.name for p in (here / "versions").glob("*.py")} - before)
    revision = Path(here.name) / "versions" / new[0] if new else None
    return Result(plan, revision, notes)


@contextlib.contextmanager
def _app_for(app, url):
    """An app like `app`, bound to `url`: Flask-Migrate's env.py then runs
    Alembic against that database, with this app's models."""
    replica = Flask(app.import_name)
    replica.config.update(app.config)
    replica.config["SQLALCHEMY_DATABASE_URI"] = url
    crm.db.init_app(replica)
    replica.extensions["migrate"] = app.extensions["migrate"]
    with replica.app_context():
        try:
            yield replica
        finally:
            for engine in crm.db.engines.values():
                engine.dispose()


def _alembic(replica, directory, run, opts=()):
    """`run(alembic config for directory)` against the replica, errors in one line."""
    config = replica.extensions["migrate"].migrate.get_config(str(directory), opts=list(opts))
    with database.friendly_errors(replica.config["SQLALCHEMY_DATABASE_URI"]):
        try:
            return run(config)
        except CommandError as exc:
            raise LabError(f"Alembic: {exc}") from None


def _upgrade(config):
    command.upgrade(config, "head")


def _autogenerate(replica, directory, request):
    """Write the new revision; return autogenerate's warnings about it (such as
    an unnamed constraint that its downgrade cannot drop), one line each."""
    def revision(config):
        command.revision(config, request.message, autogenerate=True, rev_id=request.rev_id)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        _alembic(replica, directory, revision, opts=["autogenerate"])
    return [" ".join(str(w.message).split()) for w in caught
            if not issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning))]


def _load(replica, data_dir):
    with database.friendly_errors(replica.config["SQLALCHEMY_DATABASE_URI"]), \
            crm.db.engine.begin() as conn:
        return data.load(conn, data_dir)
