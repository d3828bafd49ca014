"""`flask replay-production`: write the next migration on top of production's history.

Some teams keep `migrations/` only on the `production` branch (master ignores it).
To write the next revision by hand you would: switch to production, rebuild a
database from its migrations, load a production DATA snapshot, carry
`migrations/` over to master and run `flask db migrate` there (lab 03 walks
through it). This command does the same without touching your checkout's
branch or index:

1. read production's `migrations/` with `git archive` into a temporary folder;
2. (re)create a scratch database `<configured>_replay` (the configured database
   itself only with --into-configured), upgrade it to production's head, and
   load DATA into it;
3. put production's `migrations/` into this checkout (refusing to replace a
   different one unless --replace-migrations) and autogenerate the new
   revision against that replica of production.

Any failure is one line, and undoes what the command did: the scratch database
is dropped, temporary folders are removed, `migrations/` is put back as it was.
"""
import contextlib
import filecmp
import io
import shutil
import subprocess
import tarfile
import tempfile
import warnings
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy.engine import make_url

from labapp import data, database
from labapp.errors import LabError

IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")


# -- git, read only ---------------------------------------------------------------

def _git(*args, cwd):
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=60)
    except FileNotFoundError:
        raise LabError("git is not installed (or not on PATH)") from None
    return proc


def _git_text(*args, cwd):
    proc = _git(*args, cwd=cwd)
    return proc.returncode, proc.stdout.decode("utf-8", "replace").strip()


def _checkout(cwd, branch):
    """(top-level folder, path of cwd inside the repository) after the checks
    that need no database: a repository, the branch, a clean working tree."""
    code, top = _git_text("rev-parse", "--show-toplevel", cwd=cwd)
    if code != 0 or not top:
        raise LabError("not a git repository: run `flask replay-production` in your project's checkout")
    _, prefix = _git_text("rev-parse", "--show-prefix", cwd=cwd)
    code, _ = _git_text("rev-parse", "--verify", "--quiet", f"{branch}^{{commit}}", cwd=cwd)
    if code != 0:
        raise LabError(f"no branch {branch!r} in this repository (production's history "
                       "lives there; pass --branch to name another)")
    # not _git_text: its strip() would eat the first line's leading " M"
    status = _git("status", "--porcelain", "--untracked-files=normal", cwd=cwd).stdout.decode(
        "utf-8", "replace")
    if status.strip():
        changed = [line[3:] for line in status.splitlines() if line.strip()]
        raise LabError(f"the working tree has uncommitted changes ({len(changed)}: "
                       f"{', '.join(changed[:3])}{', ...' if len(changed) > 3 else ''}): "
                       "commit or stash them first")
    return Path(top), prefix


def _extract_migrations(top, prefix, branch, directory, into):
    """Write `branch`'s <prefix><directory>/ under `into`; return its path there."""
    path = f"{prefix}{directory}".rstrip("/")
    proc = _git("archive", "--format=tar", branch, "--", path, cwd=top)
    if proc.returncode != 0:
        raise LabError(f"branch {branch!r} has no {path}/ folder: nothing to replay")
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        if hasattr(tarfile, "data_filter"):  # Python 3.10.12+, 3.11.4+
            tar.extractall(into, filter="data")
        else:
            tar.extractall(into)
    extracted = Path(into) / path
    if not (extracted / "env.py").is_file() or not (extracted / "versions").is_dir():
        raise LabError(f"{path}/ on branch {branch!r} is not an Alembic migrations folder "
                       "(no env.py or versions/)")
    return extracted


def _same_tree(a, b):
    """Do two folders hold the same files (ignoring Python caches)?"""
    def files(root):
        return {p.relative_to(root) for p in Path(root).rglob("*")
                if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}

    names = files(a)
    if names != files(b):
        return False
    return all(filecmp.cmp(Path(a) / n, Path(b) / n, shallow=False) for n in names)


def _has_files(folder):
    return any(p.is_file() and "__pycache__" not in p.parts for p in Path(folder).rglob("*"))


# -- DATA, read only ----------------------------------------------------------------

def _check_data(data_dir):
    """Parse every CSV now, so a malformed file fails before any database work."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise LabError(f"no DATA folder at {data_dir}: make one on production with "
                       f"`flask dumpdata {data_dir}` (or pass --data DIR)")
    files = sorted(data_dir.glob("*.csv"))
    if not files:
        raise LabError(f"no .csv files in {data_dir}: expected one file per table")
    rows = 0
    for path in files:
        _, records = data._read_csv(path)
        rows += len(records)
    return files, rows


# -- Alembic against another database, in this process ------------------------------

@contextlib.contextmanager
def _app_for(url):
    """An app like the current one, bound to `url`: Flask-Migrate's env.py
    then runs Alembic against that database, with this app's models."""
    from labapp import db

    app = Flask(current_app.import_name)
    app.config.update(current_app.config)
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    db.init_app(app)
    app.extensions["migrate"] = current_app.extensions["migrate"]
    with app.app_context():
        try:
            yield app
        finally:
            for engine in db.engines.values():
                engine.dispose()


def _alembic(url, directory, run):
    """Run `run(alembic_config)` with `directory` as the scripts folder, against `url`."""
    from alembic.util import CommandError

    migrate_ext = current_app.extensions["migrate"]
    with _app_for(url), database.friendly_errors(url):
        try:
            return run(migrate_ext.migrate, str(directory))
        except CommandError as exc:
            raise LabError(f"Alembic: {exc}") from None


def _upgrade(url, directory):
    from alembic import command

    _alembic(url, directory, lambda m, d: command.upgrade(m.get_config(d), "head"))


def _head(directory):
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

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


def _autogenerate(url, directory, message, rev_id):
    """Write the new revision; return autogenerate's warnings about it (such as
    an unnamed constraint that its downgrade cannot drop), one line each."""
    from alembic import command

    def run(migrate_obj, d):
        config = migrate_obj.get_config(d, opts=["autogenerate"])
        return command.revision(config, message, autogenerate=True, rev_id=rev_id)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        _alembic(url, directory, run)
    return [" ".join(str(w.message).split()) for w in caught
            if not issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning))]


def _load(url, data_dir):
    from labapp import db

    with _app_for(url), database.friendly_errors(url), db.engine.begin() as conn:
        return data.load(conn, data_dir)


# -- the command --------------------------------------------------------------------

@click.command("replay-production")
@click.option("-m", "--message", default=None, help="The new revision's message.")
@click.option("--rev-id", default=None, help="The new revision's id (default: random).")
@click.option("--data", "data_dir", default="DATA", show_default=True,
              type=click.Path(file_okay=False), help="Production's DATA snapshot (CSV folder).")
@click.option("--branch", default="production", show_default=True,
              help="The branch (or any git revision) whose migrations/ is production's history.")
@click.option("--into-configured", is_flag=True,
              help="Rebuild the app's configured database (DROPS it) instead of <name>_replay.")
@click.option("--replace-migrations", is_flag=True,
              help="Replace a migrations/ folder here that differs from production's.")
@click.option("--dry-run", is_flag=True, help="Check everything and print the plan; change nothing.")
@with_appcontext
def replay_production_command(message, rev_id, data_dir, branch, into_configured,
                              replace_migrations, dry_run):
    """Write the next migration on top of production's history.

    Reads BRANCH's migrations/ (git archive: your checkout is not touched),
    rebuilds a scratch database from it (<configured>_replay), loads the DATA
    snapshot, puts production's migrations/ here and runs the equivalent of
    `flask db migrate -m MESSAGE --rev-id ID` against that replica.
    Then review the new revision before you apply it anywhere."""
    cwd = Path.cwd()
    directory = current_app.extensions["migrate"].directory
    configured = make_url(current_app.config["SQLALCHEMY_DATABASE_URI"])
    if configured.get_backend_name() == "sqlite":
        raise LabError("replay-production needs a database server (PostgreSQL), not SQLite: "
                       "set DATABASE_URL")
    target = configured if into_configured else configured.set(database=f"{configured.database}_replay")
    target_url = target.render_as_string(hide_password=False)
    name = target.database

    top, prefix = _checkout(cwd, branch)
    csv_files, total_rows = _check_data(data_dir)
    here = cwd / directory
    # named after the target database: a leftover (there should be none) says whose it is
    with tempfile.TemporaryDirectory(prefix=f"replay-production-{name}-") as tmp:
        source = _extract_migrations(top, prefix, branch, directory, tmp)
        head, count = _head(source)
        existing = here.is_dir() and _has_files(here)
        conflict = existing and not _same_tree(here, source)
        if conflict and not replace_migrations:
            raise LabError(f"{directory}/ already exists here and differs from {branch}'s: "
                           "move it away, or pass --replace-migrations to replace it")
        exists = database.database_exists(target_url)  # also: is the server reachable?

        recreate = "drop and re-create" if exists else "create"
        if conflict:
            place = f"replace this checkout's {directory}/ with {branch}'s (--replace-migrations)"
        elif existing:
            place = f"keep this checkout's {directory}/ (the same as {branch}'s)"
        else:
            place = f"copy {branch}'s {directory}/ into this checkout"
        migrate_args = (f' -m "{message}"' if message else "") + (f" --rev-id {rev_id}" if rev_id else "")
        click.echo(f"Replaying branch {branch!r} into database {name!r}"
                   f"{' (the configured one)' if into_configured else ''}:")
        click.echo(f"  1. read {directory}/ from {branch} with git archive "
                   f"({count} revision{'s' * (count != 1)}, head {head})")
        click.echo(f"  2. {recreate} database {name!r}")
        click.echo(f"  3. upgrade it to {head}")
        click.echo(f"  4. load {data_dir} ({len(csv_files)} files, {total_rows} rows)")
        click.echo(f"  5. {place}")
        click.echo(f"  6. flask db migrate{migrate_args} against {name!r}")
        if dry_run:
            click.echo("Dry run: nothing was changed.")
            return

        backup = Path(tmp) / "previous-migrations"
        placed = False
        created = False
        try:
            if exists:
                database.drop_database(target_url)
            database.create_database(target_url)
            created = True
            _upgrade(target_url, source)
            counts = _load(target_url, data_dir)
            loaded = ", ".join(f"{n} {t}" for t, n in counts.items())
            click.echo(f"Loaded {data_dir}: {loaded}")
            if conflict:
                shutil.move(str(here), str(backup))
            if not existing or conflict:
                if here.exists():  # only caches in it
                    shutil.rmtree(here)
                shutil.copytree(source, here, ignore=IGNORED)
                placed = True
            before = {p.name for p in (here / "versions").glob("*.py")}
            notes = _autogenerate(target_url, here, message, rev_id)
        except BaseException:
            if created:
                with contextlib.suppress(Exception):
                    database.drop_database(target_url, missing_ok=True)
            if placed:
                shutil.rmtree(here, ignore_errors=True)
            if backup.exists():
                shutil.move(str(backup), str(here))
            raise
        new = sorted({p.name for p in (here / "versions").glob("*.py")} - before)

    click.echo(f"Done: {name!r} holds production's schema ({head}) and its data.")
    if not new:
        click.echo("No new revision: your models match production's schema.")
        return
    revision = Path(directory) / "versions" / new[0]
    click.echo(f"New revision: {revision} (on top of {head})")
    for note in notes:
        click.echo(f"Warning: {note}")
    click.echo(f"Next: review {revision}, then try it on the replica: "
               + ("flask db upgrade" if into_configured
                  else f"LABAPP_DATABASE={name} flask db upgrade"))
