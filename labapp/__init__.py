"""labapp: the tiny CRM (contacts, deals, contact events) that the labs migrate,
and everything the labs call.

The layers, bottom up (a layer imports only from those below it;
tests/test_layers.py holds every module to that):

    errors.py, settings.py   LabError and its one formatter; every environment variable
    server/     the database server: which one (config), the embedded PostgreSQL
                (pgserver), create and drop databases (database), learners' names
                (learners), background processes of a workspace (processes)
    crm/        the app: its extensions (db, migrate), models, web pages and JSON
                API (web, templates/), DATA folders (data, sample/)
    live/       the app running: served by waitress (appserver), its users
                (traffic), the lock trace (locktrace), lab 04's observatory, and
                the plots of both (timeline)
    runtime/    the notebooks' side: the lab registry (labs), a lab's setup cell
                and its guard (lab), workspaces (workspace, starter/), lab 11's
                production made long ago (brownfield), a schema read from the
                catalog and two compared (schema), self-checks, diagrams, the
                labs' notebooks wherever the kit is installed
    room/       a workshop on one server: a role per learner (roles), the live
                view of who passed what (progress)
    commands/   the `flask` commands (cli, `flask db` with a true failure line
                from outcome, `flask trace` in trace, the replay with gitrepo)
    app.py      create_app: the app factory, which wires the layers together

What a notebook cell or a lab's workspace imports stays here, at the top:

    from labapp import lab, appserver, traffic, locktrace
    from labapp import selfcheck as check
    from labapp import schema                  # a database's schema, and two compared
    from labapp import db, create_app          # a workspace's models.py and app.py

Each such name is the module (or object) of its layer, imported when first
asked for: importing `labapp` itself loads nothing else.

Around it: ``notebooks/`` holds the labs, committed with their outputs (the
learner copies, ``solutions/``, the instructor guide); ``tests/`` checks all of
it (``tests/chains/<lab>.patch``: what each lab writes to ``migrations/``);
``tools/`` has what maintainers run (``build_labs.py``, ``chains.py``, the
benchmark, the site, the room's hub).

A new lab: an entry in ``runtime/labs.py``, its solved notebook in
``notebooks/solutions/`` (cells tagged ``solution`` for the exercises),
``python tools/build_labs.py NN-Title.ipynb`` for the learner copy, and if it
writes migrations, ``python tools/chains.py refresh labNN`` for its chain.
"""
import importlib

# public name -> where it lives (a module, or "module:attribute")
PUBLIC = {
    "create_app": "labapp.app:create_app",
    "db": "labapp.crm:db",
    "migrate": "labapp.crm:migrate",
    "lab": "labapp.runtime.lab",
    "selfcheck": "labapp.runtime.selfcheck",
    "diagrams": "labapp.runtime.diagrams",
    "schema": "labapp.runtime.schema",
    "appserver": "labapp.live.appserver",
    "traffic": "labapp.live.traffic",
    "locktrace": "labapp.live.locktrace",
    "timeline": "labapp.live.timeline",
    "observatory": "labapp.live.observatory",
}


def __getattr__(name):  # PEP 562: `from labapp import traffic` imports labapp.live.traffic
    if name not in PUBLIC:
        raise AttributeError(f"module 'labapp' has no attribute {name!r}")
    module, _, attribute = PUBLIC[name].partition(":")
    found = importlib.import_module(module)
    return getattr(found, attribute) if attribute else found


def __dir__():
    return sorted([*globals(), *PUBLIC])
