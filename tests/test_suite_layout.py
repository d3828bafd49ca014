"""The tests and the tools stand on their own, as Alembic's keep their builders in
alembic/testing/env.py: enforced here, not only described.

* no module of tests/ imports a test file or conftest.py (plain helpers live in
  tests/helpers.py, fixtures in conftest.py, what tools share in tools/scenarios.py);
* nothing in tools/ imports from tests/;
* tests import from tools/ only the modules tools/__init__.py names (FOR_TESTS).

Imports inside functions count too; code in strings (what a test runs in a
subprocess) does not.
"""
import ast

import pytest

import tools
from helpers import ROOT

TESTS = ROOT / "tests"
TOOLS = ROOT / "tools"
# every module name a file of tests/ answers to (tests/ is on sys.path under pytest)
TEST_MODULES = {p.stem for p in TESTS.glob("*.py")}


def imported(source):
    """(line, dotted name) of everything `source` imports: `from a.b import c` gives
    a.b.c (c may be a module) and a.b; relative imports are left out."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            yield from ((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)


def imports_of_test_files(source):
    """The test files and conftest that `source` imports."""
    return sorted({(line, name) for line, name in imported(source)
                   if name.split(".")[0].startswith("test_") and name.split(".")[0] in TEST_MODULES
                   or name.split(".")[0] == "conftest"})


def from_tests(source):
    """What `source` imports from tests/ (any of its modules), and the lines that
    put tests/ on sys.path."""
    found = {(line, name) for line, name in imported(source) if name.split(".")[0] in TEST_MODULES}
    found |= {(number, "sys.path") for number, line in enumerate(source.splitlines(), 1)
              if "sys.path" in line and "tests" in line}
    return sorted(found)


def undocumented_tools(source):
    """The modules of tools/ that `source` imports and tools.FOR_TESTS does not name."""
    found = set()
    for line, name in imported(source):
        parts = name.split(".")
        if parts[0] != "tools" or len(parts) == 1:
            continue
        module = ".".join(parts[1:])
        if module in tools.FOR_TESTS:
            continue
        # `from tools.hub import driver` also yields tools.hub: a package on the way to one
        if any(allowed.startswith(module + ".") for allowed in tools.FOR_TESTS):
            continue
        # `from tools.bootstrap import LATER` also yields tools.bootstrap.LATER: a name in one
        if any(module.startswith(allowed + ".") for allowed in tools.FOR_TESTS):
            continue
        found.add((line, name))
    return sorted(found)


TEST_SOURCES = sorted(TESTS.glob("*.py"))
TOOL_SOURCES = sorted(p for p in TOOLS.rglob("*.py") if "node_modules" not in p.parts)


@pytest.mark.parametrize("path", TEST_SOURCES, ids=lambda p: p.name)
def test_no_module_of_the_tests_imports_a_test_file_or_conftest(path):
    assert imports_of_test_files(path.read_text()) == []


@pytest.mark.parametrize("path", TOOL_SOURCES, ids=lambda p: str(p.relative_to(TOOLS)))
def test_the_tools_import_nothing_from_the_tests(path):
    assert from_tests(path.read_text()) == []


@pytest.mark.parametrize("path", TEST_SOURCES, ids=lambda p: p.name)
def test_the_tests_import_only_the_tools_named_for_them(path):
    assert undocumented_tools(path.read_text()) == []


def test_every_tool_named_for_the_tests_exists():
    for module in tools.FOR_TESTS:
        assert (TOOLS / (module.replace(".", "/") + ".py")).exists(), module


def test_the_checks_catch_a_violation():
    """The checks above can fail: each on a synthetic source that breaks its rule."""
    assert imports_of_test_files("from test_bootstrap import lab_imports\n") == [
        (1, "test_bootstrap"), (1, "test_bootstrap.lab_imports")]
    assert imports_of_test_files("def f():\n    from conftest import ROOT\n") == [
        (2, "conftest"), (2, "conftest.ROOT")]
    assert imports_of_test_files("from helpers import rows\nimport notebook_outputs\n") == []

    assert from_tests("import sys\ndef f():\n    from helpers import rows\n") == [
        (3, "helpers"), (3, "helpers.rows")]
    assert from_tests("from test_replay import make_project\n")[0] == (1, "test_replay")
    assert from_tests('sys.path[:0] = [str(ROOT), str(ROOT / "tests")]\n') == [(1, "sys.path")]
    assert from_tests("from tools import scenarios\n") == []

    assert undocumented_tools("from tools.bench import measure\n") == [
        (1, "tools.bench"), (1, "tools.bench.measure")]
    assert undocumented_tools("import tools.bench.live\n") == [(1, "tools.bench.live")]
    assert undocumented_tools("from tools import chains, scenarios\nfrom tools.hub import driver\n"
                              "from tools.bootstrap import LATER\n") == []


def test_every_file_scheduled_first_exists():
    """conftest.py's LONGEST_FIRST (what xdist hands out first) names files of the suite:
    a renamed one would silently go back to xdist's own order."""
    tree = ast.parse((ROOT / "conftest.py").read_text())
    named = next(ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                 and [ast.unparse(t) for t in node.targets] == ["LONGEST_FIRST"])
    assert len(named) == len(set(named)) > 10
    assert [path for path in named if not (ROOT / path).is_file()] == []
