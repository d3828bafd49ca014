"""The app factory: the CRM with its database, pages and `flask` commands.

    app = create_app()                    # the kit's own app: `flask --app labapp`
    app = create_app(models="models")     # a lab workspace's app.py, with its models.py
"""
import importlib
from pathlib import Path

from flask import Flask

from labapp.commands import cli
from labapp import crm, settings
from labapp.crm import web
from labapp.server import config

KIT_MODELS = "labapp.crm.models"


def create_app(test_config=None, models=KIT_MODELS):
    """Build the app. `models` names the module that defines the tables:
    the kit's own `labapp.crm.models`, or a lab workspace's `models.py`."""
    # instance/ (where a relative sqlite:/// file goes) in the folder `flask` runs in:
    # a lab's workspace, which its setup cell resets, not the kit's install folder
    app = Flask("labapp.crm", instance_path=str(Path.cwd() / "instance"))  # templates: crm/templates
    cli.init_app(app)  # first: a LabError from here on prints as one line in `flask`
    app.config.from_mapping(test_config or {})
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        app.config["SQLALCHEMY_DATABASE_URI"] = config.database_url(settings.lab_database())
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS",
                          config.engine_options(app.config["SQLALCHEMY_DATABASE_URI"]))

    # crm.db read now, not at import: a test may give the models a SQLAlchemy() of their own
    crm.db.init_app(app)
    # compare_type: let autogenerate notice column type changes too
    crm.migrate.init_app(app, crm.db, compare_type=True)
    web.init_app(app, importlib.import_module(models))  # the pages and the API
    cli.register_migration_commands(app)  # after Flask-Migrate's: ours replace its `db`
    if models == KIT_MODELS:  # the kit's own app (`flask --app labapp`), not a lab's:
        app.cli.add_command(cli.room_group)  # the instructor's commands
    return app
