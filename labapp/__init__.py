"""labapp: the tiny CRM (contacts, deals, contact events) that the labs migrate.

How the kit is built
--------------------
Three rooms, and what flows between them:

* ``labapp/`` is the app and everything the labs call.
  - the CRM: ``create_app`` (below), ``config`` (which database), ``models``,
    ``web`` (its pages and JSON API; templates/), served as in production by
    ``appserver`` (waitress) and driven by ``traffic`` (a load generator);
  - its ``flask`` commands: ``cli`` (createdb, loaddata, replay-production, and
    ``flask db`` with a failure line that says what was committed), backed by
    ``database``, ``data``, ``replay`` + ``gitrepo``, and ``pgserver`` (the
    embedded PostgreSQL); ``tracecli`` (``flask trace upgrade``, for every
    Flask app in the venv through its ``flask.commands`` entry point, not
    added by ``create_app``) over ``locktrace`` (each statement's locks,
    rewrites and waits, measured on the server);
  - the notebook runtime: ``labs`` (the registry: every lab, what it starts
    from, how its databases and workspaces are named), ``workspace`` (builds a
    lab's project folder; what Flask-Migrate generates is generated again),
    ``lab`` (``lab.setup("lab02")``, the one call of a setup cell),
    ``selfcheck`` and ``diagrams`` (what cells display), ``learners`` (a named
    learner's databases carry their name: alice__lab01), ``notebooks`` (a
    learner's own copy of the labs, from a clone or an installed kit);
  - a room (tools/hub/ for its JupyterHub): ``room`` (one role per learner on a
    shared server) and ``progress`` (every learner x exercise, from the labs'
    own self-check cells run read-only), as ``flask room ...``;
  - one error type, ``errors.LabError``: domain code raises it, and only the
    ``flask`` process and the lab's kernel print it, as one line.
* ``notebooks/`` holds the labs, committed with their outputs: the learner
  copies, ``solutions/``, the instructor guide. A lab works in its own
  database and in ``notebooks/workspaces/<lab>/`` (hidden from JupyterLab's
  file browser; ``make reset LAB=...`` rebuilds both).
* ``tests/`` checks all of it; ``tests/chains/<lab>.patch`` holds what each lab
  writes to ``migrations/`` and ``models.py``, as a diff from its start.
  ``tools/`` has what maintainers run: ``build_labs.py`` (learner copies from
  the solutions, executed), ``chains.py`` (refresh a chain), ``benchmark.py``.

A new lab: an entry in ``labs.LABS``, its solved notebook in
``notebooks/solutions/`` (cells tagged ``solution`` for the exercises),
``python tools/build_labs.py NN-Title.ipynb`` for the learner copy, and if it
writes migrations, ``python tools/chains.py refresh labNN`` for its chain.
"""
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
    from labapp import cli, config, web

    # instance/ (where a relative sqlite:/// file goes) in the folder `flask` runs in:
    # a lab's workspace, which its setup cell resets, not the kit's install folder
    app = Flask(__name__, instance_path=str(Path.cwd() / "instance"))
    cli.init_app(app)  # first: a LabError from here on prints as one line in `flask`
    app.config.from_mapping(test_config or {})
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        app.config["SQLALCHEMY_DATABASE_URI"] = config.database_url()
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS",
                          config.engine_options(app.config["SQLALCHEMY_DATABASE_URI"]))

    db.init_app(app)
    # compare_type: let autogenerate notice column type changes too
    migrate.init_app(app, db, compare_type=True)
    web.init_app(app, importlib.import_module(models))  # the pages and the API
    cli.register_migration_commands(app)  # after Flask-Migrate's: ours replace its `db`
    if models == "labapp.models":  # the kit's own app (`flask --app labapp`), not a lab's:
        app.cli.add_command(cli.room_group)  # the instructor's commands
    return app
