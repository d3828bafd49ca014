"""The package's layers are enforced, not only described (labapp/__init__.py's map),
in the manner of click's tests/test_imports.py:

* every module imports only from its own layer or those below it, imports inside
  functions included (a name taken from `labapp`'s top counts as the module it
  stands for: `from labapp import db` is labapp.crm);
* an import inside a function says why it is there, in a comment (start-up time,
  a dependency that only one kind of process has);
* what a process loads is what it needs: the CRM and the `flask` commands load no
  IPython and no matplotlib; importing `labapp` loads nothing else.
"""
import ast
import json
import subprocess
import sys

import pytest

from helpers import ROOT

import labapp

# bottom up; a module may import from its own layer and from those before it
LAYERS = ("base", "server", "crm", "live", "runtime", "room", "commands", "app")
PACKAGE = ROOT / "labapp"


def layer(module):
    """The layer of a module of the kit, by its dotted name."""
    parts = module.split(".")
    if parts[:2] in (["labapp", "errors"], ["labapp", "settings"]):
        return "base"
    if len(parts) >= 2 and parts[1] in LAYERS:
        return parts[1]
    raise AssertionError(f"{module} is in no layer: add it to labapp/__init__.py's map and here")


def module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree):
    """(line, the labapp module it takes) for every import of the kit in `tree`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, a.name) for a in node.names if a.name.startswith("labapp."))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "labapp":  # the top's names stand for modules of the layers
                for alias in node.names:
                    target = labapp.PUBLIC.get(alias.name, f"labapp.{alias.name}").partition(":")[0]
                    yield node.lineno, target
            elif node.module.startswith("labapp."):
                yield node.lineno, node.module


def upward(source, name):
    """The imports in `source` (the module `name`) that reach a higher layer."""
    own = LAYERS.index(layer(name))
    return [(line, target) for line, target in imported(ast.parse(source))
            if LAYERS.index(layer(target)) > own]


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "starter" not in p.parts and p.name != "__init__.py"
                 or p.parent != PACKAGE and p.name == "__init__.py")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_module_imports_only_from_its_layer_and_below(path):
    assert upward(path.read_text(), module_name(path)) == []


def test_the_layer_check_catches_an_upward_import():
    """The check above can fail: the server reaching into the notebooks' side."""
    source = "def f():\n    from labapp.runtime import lab  # why not\n"
    assert upward(source, "labapp.server.pgserver") == [(2, "labapp.runtime")]
    assert upward("from labapp import lab\n", "labapp.crm.web") == [(1, "labapp.runtime.lab")]
    assert upward("from labapp.server import config\n", "labapp.crm.web") == []


def unexplained(source):
    """Imports inside functions with no comment on their line or just above their group."""
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for sub in ast.walk(node):
            if not isinstance(sub, (ast.Import, ast.ImportFrom)):
                continue
            at = sub.lineno - 1
            while at > 0 and lines[at - 1].strip().startswith(("import ", "from ")) and "#" not in lines[at]:
                at -= 1  # up to the first import of its group
            if "#" not in lines[sub.lineno - 1] and "#" not in lines[at] and not lines[at - 1].strip().startswith("#"):
                found.append((sub.lineno, lines[sub.lineno - 1].strip()))
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_an_import_inside_a_function_says_why(path):
    assert unexplained(path.read_text()) == []


def test_the_why_check_catches_a_silent_import():
    assert unexplained("def f():\n    import json\n") == [(2, "import json")]
    assert unexplained("def f():\n    # slow\n    import json\n    import csv\n") == []


def loaded(code):
    """The modules a fresh interpreter has loaded after `code`."""
    proc = subprocess.run([sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout.splitlines()[-1]))


def test_importing_labapp_loads_nothing_else():
    assert {m for m in loaded("import labapp") if m.startswith("labapp")} == {"labapp"}


@pytest.mark.parametrize("code", ["from labapp.crm import models, web, data",
                                  "from labapp.app import create_app; create_app()"])
def test_the_crm_and_the_commands_load_no_ipython_and_no_matplotlib(code):
    heavy = {m.split(".")[0] for m in loaded(code)} & {"IPython", "matplotlib", "nbformat", "ipykernel"}
    assert heavy == set()
