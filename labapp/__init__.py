"""labapp: the tiny CRM (contacts, deals, contact events) that the labs migrate."""
import importlib
from pathlib import Path

from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()
migrate = Migrate()


def create_app(test_config=None, models="labapp.models"):
    """Build the app. `models` names the module that defines the tables:
    the kit's own `labapp.models`, or a lab workspace's `models.py`."""
    from labapp import cli, config

    # instance/ (where a relative sqlite:/// file goes) in the folder `flask` runs in:
    # a lab's workspace, which its setup cell resets, not the kit's install folder
    app = Flask(__name__, instance_path=str(Path.cwd() / "instance"))
    app.config.from_mapping(config.from_environment())
    if test_config:
        app.config.from_mapping(test_config)
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        app.config["SQLALCHEMY_DATABASE_URI"] = config.embedded_database_url()

    db.init_app(app)
    # compare_type: let autogenerate notice column type changes too
    migrate.init_app(app, db, compare_type=True)
    importlib.import_module(models)
    cli.init_app(app)
    return app
