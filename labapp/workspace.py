"""A lab's workspace: the small Flask project a lab's `!flask` commands run in.

    build(folder, lab)   # app.py + models.py (+ migrations/, + DATA/) as the lab starts

What Flask-Migrate generates (`migrations/` with env.py, alembic.ini,
script.py.mako, README) is generated here again each time, by Flask-Migrate's
own template; the kit keeps only what a person wrote: the app module, the
models, and lab 01's revision 0001 that later labs start from.
"""
import argparse
import contextlib
import io
import shutil
from pathlib import Path

KIT = Path(__file__).resolve().parent
APP = KIT / "starter" / "app.py"
MODELS = KIT / "models.py"
# what lab 01 ends with: revision 0001, its downgrade fixed to drop the enum types
FIRST_REVISION = KIT / "starter" / "0001_create_crm_tables.py"
SAMPLE_DATA = KIT / "data" / "sample"


def init_migrations(directory):
    """Write what `flask db init` writes into `directory` (Flask-Migrate's
    "flask" template), without its console lines and without an app."""
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


def build(folder, lab):
    """A fresh workspace in `folder` (replaced if it exists) for `lab`'s start."""
    folder = Path(folder)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    shutil.copyfile(APP, folder / "app.py")
    shutil.copyfile(MODELS, folder / "models.py")
    if lab.migrations:
        versions = init_migrations(folder / "migrations") / "versions"
        shutil.copyfile(FIRST_REVISION, versions / FIRST_REVISION.name)
    if lab.data:
        shutil.copytree(SAMPLE_DATA, folder / "DATA")
    return folder
