"""`flask replay-production` against real git repositories made in a temporary folder.

Each test builds a small project the way lab 03 describes it: branch `production`
commits `migrations/` (revisions 0001 and 0002), branch `master` ignores
`migrations/` and has a newer model change (deals.closed_at and a unique
constraint), and an ignored `DATA/` snapshot holds production's rows. The
command then runs as a user runs it, `flask --app app ...` in the checkout,
on the real server (embedded PostgreSQL, or the one DATABASE_URL names).
"""
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from conftest import BIN, count_rows, postgres_only
from labapp.runtime import workspace

pytestmark = postgres_only

SAMPLE = workspace.SAMPLE_DATA
PHONES = {"1": "+44 20 7946 0001", "2": "+1 202 555 0102", "4": "+1 757 555 0104"}

PHONE_COLUMN = (
    "    email = db.Column(db.String(200), nullable=False, unique=True)\n",
    "    email = db.Column(db.String(200), nullable=False, unique=True)\n"
    "    phone = db.Column(db.String(30))\n",
)
CLOSED_AT = (
    '    currency = db.Column(db.Enum(DealCurrency, name="dealcurrency"), nullable=False)\n',
    '    currency = db.Column(db.Enum(DealCurrency, name="dealcurrency"), nullable=False)\n'
    "    closed_at = db.Column(db.DateTime)\n"
    '    __table_args__ = (db.UniqueConstraint("contact_id", "title", name="uq_deals_contact_title"),)\n',
)

REVISION_0002 = '''"""add contact phone

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-02 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('contacts', sa.Column('phone', sa.String(length=30), nullable=True))


def downgrade():
    op.drop_column('contacts', 'phone')
'''

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Lab Three", "GIT_AUTHOR_EMAIL": "lab03@example.com",
    "GIT_COMMITTER_NAME": "Lab Three", "GIT_COMMITTER_EMAIL": "lab03@example.com",
    "GIT_AUTHOR_DATE": "2026-11-01T09:00:00Z", "GIT_COMMITTER_DATE": "2026-11-01T09:00:00Z",
    "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
}


def edited(text, *changes):
    for old, new in changes:
        assert old in text
        text = text.replace(old, new)
    return text


class Project:
    """A checkout on `master` with an ignored DATA/, and a `production` branch."""

    def __init__(self, path, db_name):
        self.path, self.db_name = path, db_name
        self.env = {**os.environ, **GIT_ENV, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
                    "PYTHONDONTWRITEBYTECODE": "1",
                    "GIT_CEILING_DIRECTORIES": str(path.parent)}
        self.env.pop("FLASK_APP", None)

    def git(self, *args, check=True):
        proc = subprocess.run(["git", *args], cwd=self.path, env=self.env, capture_output=True,
                              text=True, timeout=30)
        if check:
            assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def flask(self, *args, env=None):
        """`flask --app app ARGS` in the checkout; stdout and stderr in `.output`."""
        proc = subprocess.run(["flask", "--app", "app", *args], cwd=self.path,
                              env={**self.env, **(env or {})}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=120)
        proc.output = proc.stdout
        return proc

    def leftovers(self):
        """The command's temporary folders still there (it names them after its database)."""
        return sorted(Path(tempfile.gettempdir()).glob(f"replay-production-{self.db_name}_*"))

    def write(self, name, text):
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def files(self):
        """{path: bytes} of the working tree, .git/ and ignored folders included."""
        return {str(p.relative_to(self.path)): p.read_bytes() for p in sorted(self.path.rglob("*"))
                if p.is_file() and ".git" not in p.relative_to(self.path).parts}

    def state(self):
        """What a user would notice changed in the repository."""
        return {"files": self.files(),
                "status": self.git("status", "--porcelain", "--ignored"),
                "branch": self.git("branch", "--show-current"),
                "refs": self.git("for-each-ref", "--format=%(refname) %(objectname)"),
                "worktrees": self.git("worktree", "list", "--porcelain"),
                "stash": self.git("stash", "list")}


def replica_url(db_url):
    url = make_url(db_url)
    return url.set(database=f"{url.database}_replay").render_as_string(hide_password=False)


def databases_like(db_url, name):
    engine = sa.create_engine(make_url(db_url).set(database="postgres"), poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT datname FROM pg_database WHERE datname LIKE :n "
                                    "ORDER BY 1"), {"n": name + "%"})
        return [r[0] for r in rows]


def query(url, sql):
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        return conn.execute(sa.text(sql)).all()


def make_project(path, db_name):
    """master (migrations/ ignored, newer models) + production (0001, 0002 committed),
    and an ignored DATA/ snapshot, in the new folder `path`."""
    path.mkdir()
    p = Project(path, db_name)
    base_models = (workspace.MODELS).read_text()
    shutil.copyfile(workspace.APP, path / "app.py")
    p.write("models.py", base_models)
    p.write(".gitignore", "__pycache__/\nDATA/\nmigrations/\n")
    p.git("-c", "init.defaultBranch=master", "init", "-q", "-b", "master")
    p.git("add", "-A")
    p.git("commit", "-q", "-m", "crm app")

    p.git("switch", "-q", "-c", "production")
    p.write(".gitignore", "__pycache__/\nDATA/\n")
    p.write("models.py", edited(base_models, PHONE_COLUMN))
    workspace.init_migrations(path / "migrations")
    shutil.copyfile(workspace.FIRST_REVISION, path / "migrations" / "versions" / workspace.FIRST_REVISION.name)
    p.write("migrations/versions/0002_add_contact_phone.py", REVISION_0002)
    p.git("add", "-A")
    p.git("commit", "-q", "-m", "release 2: migrations 0001, 0002")

    p.git("switch", "-q", "master")
    assert not (path / "migrations" / "env.py").exists()  # not tracked on master
    p.write("models.py", edited(base_models, PHONE_COLUMN, CLOSED_AT))
    p.git("commit", "-q", "-am", "contacts.phone, deals.closed_at")

    # production's DATA snapshot: the sample rows, contacts with a phone column
    shutil.copytree(SAMPLE, path / "DATA")
    lines = (path / "DATA" / "contacts.csv").read_text().splitlines()
    rows = [lines[0] + ",phone"] + [f"{line},{PHONES.get(line.split(',')[0], '')}" for line in lines[1:]]
    p.write("DATA/contacts.csv", "\n".join(rows) + "\n")
    assert p.git("status", "--porcelain") == ""
    return p


@pytest.fixture
def project(tmp_path, db_name, db_url):
    yield make_project(tmp_path / "crm", db_name)
    from labapp.server import database

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
    assert query(replica, "SELECT version_num FROM alembic_version") == [("0002",)]
    assert {t: count_rows(replica, t) for t in ("contacts", "contact_events", "deals")} == {
        "contacts": 6, "contact_events": 8, "deals": 10}
    assert query(replica, "SELECT id, phone FROM contacts WHERE phone IS NOT NULL ORDER BY id") == [
        (int(k), v) for k, v in sorted(PHONES.items())]
    assert query(db_url, "SELECT count(*) FROM information_schema.tables "
                         "WHERE table_schema = 'public'") == [(0,)]

    # the new revision applies on top of production's data, and goes back down
    up = project.flask("db", "upgrade", env={"LABAPP_DATABASE": f"{project.db_name}_replay"})
    assert up.returncode == 0, up.output
    assert query(replica, "SELECT version_num FROM alembic_version") == [("0003",)]
    assert query(replica, "SELECT conname FROM pg_constraint WHERE conname = 'uq_deals_contact_title'")
    assert count_rows(replica, "deals") == 10
    down = project.flask("db", "downgrade", env={"LABAPP_DATABASE": f"{project.db_name}_replay"})
    assert down.returncode == 0, down.output
    assert query(replica, "SELECT version_num FROM alembic_version") == [("0002",)]


def test_into_configured(project, db_url):
    proc = project.flask("replay-production", "--into-configured", "-m", "add deal closed_at",
                         "--rev-id", "0003")
    assert proc.returncode == 0, proc.output
    assert "(the configured one)" in proc.output
    assert query(db_url, "SELECT version_num FROM alembic_version") == [("0002",)]
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
    assert query(db_url, "SELECT count(*) FROM information_schema.tables "
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
    from labapp.server import database

    database.create_database(replica_url(db_url))
    proc = project.flask("replay-production", "--branch", "nope")
    with pytest.raises(AssertionError):
        assert_clean_failure(proc, project, db_url, before, "no branch 'nope'")
