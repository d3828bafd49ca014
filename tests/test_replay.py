"""`flask replay-production` against real git repositories made in a temporary folder.

Each test builds a small project the way lab 03 describes it
(tools/scenarios.make_project): branch `production` commits `migrations/`
(revisions 0001 and 0002), branch `master` ignores `migrations/` and has a newer
model change (deals.closed_at and a unique constraint), and an ignored `DATA/`
snapshot holds production's rows. The command then runs as a user runs it,
`flask --app app ...` in the checkout (forked: tests/flask_fork.py), on the real
server (embedded PostgreSQL, or the one DATABASE_URL names).
"""
import shutil

import pytest
from sqlalchemy.engine import make_url

import flask_fork
from helpers import count_rows, postgres_only, rows
from labapp.server import database
from tools.scenarios import PHONES, make_project, replica_url

pytestmark = postgres_only


def databases_like(db_url, name):
    return [datname for (datname,) in rows(make_url(db_url).set(database="postgres"),
                                           "SELECT datname FROM pg_database WHERE datname LIKE :n ORDER BY 1",
                                           n=name + "%")]


@pytest.fixture
def project(tmp_path, db_name, db_url):
    """Lab 03's project (tools/scenarios.py), its commands on the test's database."""
    yield make_project(tmp_path / "crm", db_name, flask=flask_fork.run)
    database.drop_database(replica_url(db_url), missing_ok=True)


def assert_clean_failure(proc, project, db_url, before, message):
    """One `Error:` line, non-zero exit, no traceback, nothing left behind."""
    assert proc.returncode != 0, proc.output
    assert "Traceback" not in proc.output, proc.output
    errors = [line for line in proc.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], proc.output
    assert databases_like(db_url, project.db_name) == [project.db_name]  # no <db>_replay
    assert project.leftovers() == []  # the command's temporary folders are gone
    assert project.state() == before


def test_happy_path(project, db_url):
    before = project.state()
    proc = project.flask("replay-production", "-m", "add deal closed_at", "--rev-id", "0003")
    assert proc.returncode == 0, proc.output
    assert "Traceback" not in proc.output
    assert "New revision: migrations/versions/0003_add_deal_closed_at.py (on top of 0002)" in proc.output
    assert f"LABAPP_DATABASE={project.db_name}_replay flask db upgrade" in proc.output

    # production's migrations/ is in the checkout, plus the new revision on top of 0002
    versions = sorted(p.name for p in (project.path / "migrations" / "versions").glob("*.py"))
    assert versions == ["0001_create_crm_tables.py", "0002_add_contact_phone.py",
                        "0003_add_deal_closed_at.py"]
    revision = (project.path / "migrations" / "versions" / "0003_add_deal_closed_at.py").read_text()
    assert "down_revision = '0002'" in revision
    assert "add_column(sa.Column('closed_at'" in revision
    assert "create_table" not in revision  # not an "initial" revision
    assert "phone" not in revision  # production already has it

    # the checkout: same branch and commits, still clean (migrations/ is ignored on master)
    after = project.state()
    assert {k: v for k, v in after.items() if k != "files"} == {
        k: v for k, v in before.items() if k not in ("files", "status")} | {
        "status": before["status"].replace("!! DATA/\n", "!! DATA/\n!! migrations/\n")}
    assert {k: v for k, v in after["files"].items() if not k.startswith("migrations/")} == before["files"]
    assert project.leftovers() == []

    # the replica: production's schema (0002) and every DATA row; the configured database untouched
    replica = replica_url(db_url)
    assert rows(replica, "SELECT version_num FROM alembic_version") == [("0002",)]
    assert {t: count_rows(replica, t) for t in ("contacts", "contact_events", "deals")} == {
        "contacts": 6, "contact_events": 8, "deals": 10}
    assert rows(replica, "SELECT id, phone FROM contacts WHERE phone IS NOT NULL ORDER BY id") == [
        (int(k), v) for k, v in sorted(PHONES.items())]
    assert rows(db_url, "SELECT count(*) FROM information_schema.tables "
                         "WHERE table_schema = 'public'") == [(0,)]

    # the new revision applies on top of production's data, and goes back down
    up = project.flask("db", "upgrade", env={"LABAPP_DATABASE": f"{project.db_name}_replay"})
    assert up.returncode == 0, up.output
    assert rows(replica, "SELECT version_num FROM alembic_version") == [("0003",)]
    assert rows(replica, "SELECT conname FROM pg_constraint WHERE conname = 'uq_deals_contact_title'")
    assert count_rows(replica, "deals") == 10
    down = project.flask("db", "downgrade", env={"LABAPP_DATABASE": f"{project.db_name}_replay"})
    assert down.returncode == 0, down.output
    assert rows(replica, "SELECT version_num FROM alembic_version") == [("0002",)]


def test_into_configured(project, db_url):
    proc = project.flask("replay-production", "--into-configured", "-m", "add deal closed_at",
                         "--rev-id", "0003")
    assert proc.returncode == 0, proc.output
    assert "(the configured one)" in proc.output
    assert rows(db_url, "SELECT version_num FROM alembic_version") == [("0002",)]
    assert count_rows(db_url, "deals") == 10
    assert databases_like(db_url, project.db_name) == [project.db_name]


def test_dry_run_changes_nothing(project, db_url):
    before = project.state()
    proc = project.flask("replay-production", "--dry-run", "-m", "add deal closed_at",
                         "--rev-id", "0003")
    assert proc.returncode == 0, proc.output
    lines = proc.output.splitlines()
    assert lines[0] == f"Replaying branch 'production' into database '{project.db_name}_replay':"
    assert "(2 revisions, head 0002)" in lines[1]
    assert "load DATA (3 files, 24 rows)" in proc.output
    assert lines[-1] == "Dry run: nothing was changed."
    assert project.state() == before
    assert databases_like(db_url, project.db_name) == [project.db_name]
    assert project.leftovers() == []
    assert rows(db_url, "SELECT count(*) FROM information_schema.tables "
                         "WHERE table_schema = 'public'") == [(0,)]


def _not_a_repository(p):
    shutil.rmtree(p.path / ".git")


def _no_production_branch(p):
    p.git("branch", "-q", "-m", "production", "release")


def _dirty_tree(p):
    (p.path / "models.py").write_text((p.path / "models.py").read_text() + "\n# work in progress\n")


def _data_missing(p):
    shutil.rmtree(p.path / "DATA")


def _data_malformed(p):
    with (p.path / "DATA" / "deals.csv").open("a") as f:
        f.write("11,1,Half a row\n")


def _data_bad_value(p):
    """Well-formed CSV that production's schema rejects: found only while loading,
    after the scratch database was built (it must be dropped again)."""
    with (p.path / "DATA" / "deals.csv").open("a") as f:
        f.write("11,1,Bitcoin deal,1.00,BTC\n")


def _unreachable(p):
    p.env["DATABASE_URL"] = "postgresql://postgres@127.0.0.1:1/postgres"


def _different_migrations(p):
    p.write("migrations/versions/0001_initial.py", "# someone's local attempt\n")


ERRORS = {
    "not-a-repository": (_not_a_repository, "not a git repository"),
    "no-production-branch": (_no_production_branch, "no branch 'production'"),
    "dirty-working-tree": (_dirty_tree, "uncommitted changes (1: models.py)"),
    "data-missing": (_data_missing, "no DATA folder at DATA"),
    "data-malformed": (_data_malformed, "deals.csv line 12: 3 values for 5 columns"),
    "data-bad-value": (_data_bad_value, "deals.csv line 12: invalid input value for enum dealcurrency"),
    "database-unreachable": (_unreachable, "cannot use postgresql+psycopg2://postgres@127.0.0.1:1/"),
    "migrations-differ": (_different_migrations, "migrations/ already exists here and differs"),
}


@pytest.mark.parametrize("case", ERRORS)
def test_errors(project, db_url, case):
    make_it_fail, message = ERRORS[case]
    make_it_fail(project)
    before = project.state() if case != "not-a-repository" else None
    proc = project.flask("replay-production", "-m", "add deal closed_at", "--rev-id", "0003")
    if case == "not-a-repository":  # no git to ask: compare the files only
        assert proc.returncode != 0 and "Traceback" not in proc.output, proc.output
        assert proc.output.strip() == f"Error: {message}: run `flask replay-production` in your project's checkout"
        assert databases_like(db_url, project.db_name) == [project.db_name]
        assert project.leftovers() == []
        return
    assert_clean_failure(proc, project, db_url, before, message)
    if case != "data-bad-value":  # found before any work: the one line is all the output
        assert proc.output.strip().count("\n") == 0, proc.output


def test_errors_can_fail(project, db_url):
    """The checks above would notice a scratch database or a stray file left behind."""
    before = project.state()
    (project.path / "DATA" / "stray.txt").write_text("left behind\n")
    database.create_database(replica_url(db_url))
    proc = project.flask("replay-production", "--branch", "nope")
    with pytest.raises(AssertionError):
        assert_clean_failure(proc, project, db_url, before, "no branch 'nope'")
