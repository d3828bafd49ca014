"""A lab's workspace: the small Flask project a lab's `!flask` commands run in.

    build(folder, lab)   # app.py + models.py (+ migrations/, + DATA/) as the lab starts

What Flask-Migrate generates (`migrations/` with env.py, alembic.ini,
script.py.mako, README) is generated here again each time, by Flask-Migrate's
own template; the kit keeps only what a person wrote: the app module, the
models, and what lab 01 ends with, which later labs start from: revision 0001
and its edit of alembic.ini's logger levels.
"""
import argparse
import contextlib
import io
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
APP = HERE / "starter" / "app.py"
MODELS = HERE.parent / "crm" / "models.py"
# lab 11's production was made from this older models.py, with db.create_all()
LEGACY_MODELS = HERE / "starter" / "legacy_models.py"
# what lab 01 ends with: revision 0001, its downgrade fixed to drop the enum types
FIRST_REVISION = HERE / "starter" / "0001_create_crm_tables.py"
SAMPLE_DATA = HERE.parent / "crm" / "sample"


def init_migrations(directory):
    """Write what `flask db init` writes into `directory` (Flask-Migrate's
    "flask" template), without its console lines and without an app."""
    # Alembic and Flask-Migrate: only when a lab starts with migrations/ (a kernel's first cell)
    from alembic import command
    from flask_migrate import Config

    directory = Path(directory)
    config = Config()
    config.cmd_opts = argparse.Namespace(quiet=True)
    config.set_main_option("script_location", str(directory))
    config.config_file_name = str(directory / "alembic.ini")
    with contextlib.redirect_stdout(io.StringIO()):
        command.init(config, str(directory), template="flask")
    return directory


# Lab 01's edit of the generated alembic.ini (a learner would make it in a real project):
# Alembic's INFO lines that teach nothing, quieted through the workspace's own logger levels
QUIET_LOGGERS = ("""
keys = root,sqlalchemy,alembic,flask_migrate
""", """
keys = root,sqlalchemy,alembic,alembic_plugins,alembic_sequences,flask_migrate
""", """
[logger_flask_migrate]
""", """
[logger_alembic_plugins]
# autogenerate's plugin set-up notes: six INFO lines on every `flask db migrate`
level = WARN
handlers =
qualname = alembic.runtime.plugins

[logger_alembic_sequences]
# Alembic's notes on serial id sequences: one INFO line per id column on every migrate
level = WARN
handlers =
qualname = alembic.ddl.postgresql

[logger_flask_migrate]
""")


def quiet_alembic_logging(ini):
    """Apply lab 01's logger levels to the alembic.ini `ini` (see QUIET_LOGGERS)."""
    ini = Path(ini)
    text = ini.read_text()
    pairs = list(zip(QUIET_LOGGERS[::2], QUIET_LOGGERS[1::2], strict=True))
    for old, new in pairs:
        old, new = old.removeprefix("\n"), new.removeprefix("\n")
        assert text.count(old) == 1, f"Flask-Migrate's alembic.ini changed: {old!r}"
        text = text.replace(old, new)
    ini.write_text(text)


def build(folder, lab):
    """A fresh workspace in `folder` (replaced if it exists) for `lab`'s start."""
    folder = Path(folder)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    shutil.copyfile(APP, folder / "app.py")
    shutil.copyfile(LEGACY_MODELS if lab.brownfield else MODELS, folder / "models.py")
    if lab.migrations:
        migrations = init_migrations(folder / "migrations")
        quiet_alembic_logging(migrations / "alembic.ini")
        shutil.copyfile(FIRST_REVISION, migrations / "versions" / FIRST_REVISION.name)
    if lab.data:
        shutil.copytree(SAMPLE_DATA, folder / "DATA")
    return folder
