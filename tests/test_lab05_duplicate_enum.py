"""Lab 05 (one enum type, two tables), checked on the real server.

* The revision autogenerate writes for a second table that reuses
  ContactEventStatus fails `flask db upgrade` with one line (DuplicateObject),
  and leaves the schema, the rows and alembic_version as they were; from an
  empty database, in one upgrade run, it passes (section 4 shows it), while
  pytest-alembic's test_upgrade, one revision at a time, catches it.
* Lab 05's final chain (tests/chains/lab05.patch, what its solution notebook
  writes) ends with ONE `contacteventstatus` type, used by every
  table that reuses it, and one `dealcurrency`.
* Each revision's downgrade gives back exactly the schema below it: the tables
  go, the types that revision 0001 owns stay until 0001's own downgrade.
* Lab 01's habit in 0002 (dropping the type in its downgrade) fails in one line
  and rolls back, the DROP TABLE before it included.
* Exercise 3's fault: op.add_column creates no enum type, whatever the column's
  type says; only op.create_table does.
"""
import re

import pytest
import sqlalchemy as sa
from pytest_alembic.tests import default as alembic_tests

from helpers import SAMPLE, flask_in, postgres_only, rows
from labapp.crm import data
from labapp.runtime import labs, workspace

LABELS = ["INVITED", "WONTSHOW", "ATTENDED", "DENIED", "COULDNTMAKEIT"]
QUOTED = ", ".join(f"'{label}'" for label in LABELS)
REVISIONS = ["0001", "0002", "0003", "0004", "0005"]

# the chain's env.py is Flask-Migrate 4.1's template: it calls db.get_engine()
pytestmark = [postgres_only,
              pytest.mark.filterwarnings("ignore:'get_engine' is deprecated:DeprecationWarning")]


# -- helpers ----------------------------------------------------------------------

def state(url):
    """Everything a revision could change: columns with their types, enum types
    with their labels, row counts, and the alembic_version row(s)."""
    columns = rows(url, "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod)"
                        " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
                        " JOIN pg_namespace n ON n.oid = c.relnamespace"
                        " WHERE c.relkind = 'r' AND n.nspname = current_schema()"
                        " AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1, 2")
    types = rows(url, "SELECT t.typname, string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)"
                      " FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid"
                      " GROUP BY t.oid, t.typname ORDER BY 1")
    tables = sorted({table for table, _, _ in columns})
    counts = {t: rows(url, f'SELECT count(*) FROM "{t}"')[0][0] for t in tables}
    version = []
    if "alembic_version" in tables:
        version = [v for (v,) in rows(url, "SELECT version_num FROM alembic_version")]
    return {"columns": columns, "types": types, "rows": counts, "version": version}


def used_by(url):
    """[(enum type, ["table.column", ...]), ...] from pg_type + pg_attribute, one
    entry per type object (two types of the same name would show up twice)."""
    found = rows(url, "SELECT t.typname, array_agg(c.relname || '.' || a.attname)"
                      " FROM pg_type t"
                      " JOIN pg_attribute a ON a.atttypid = t.oid AND NOT a.attisdropped"
                      " JOIN pg_class c ON c.oid = a.attrelid AND c.relkind = 'r'"
                      " WHERE t.typtype = 'e' GROUP BY t.oid, t.typname")
    return sorted((name, sorted(columns)) for name, columns in found)


def load_sample_rows(url):
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        data.load(conn, SAMPLE)


def one_line_error(proc):
    """The failing command's error line; every other line is Alembic's INFO log."""
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stdout, proc.stdout
    errors = [line for line in lines if not line.startswith("INFO  [")]
    assert len(errors) == 1, proc.stdout
    return errors[0]


def unfix(folder):
    """Revision 0002 as autogenerate wrote it: sa.Enum(..., name='contacteventstatus')."""
    revision = folder / "migrations" / "versions" / "0002_add_event_invitations.py"
    fixed = revision.read_text()
    unfixed = re.sub(r"postgresql\.ENUM\(([^)]*?),\s*name='contacteventstatus', create_type=False\)",
                     r"sa.Enum(\1, name='contacteventstatus')", fixed)
    assert unfixed != fixed and f"sa.Enum({QUOTED}, name='contacteventstatus')" in unfixed
    revision.write_text(unfixed)


@pytest.fixture
def lab05_chain(chain):
    """A workspace holding lab 05's final migrations/ and models.py."""
    return chain("lab05")


def event_invitation_model(lab05_chain):
    """Lab 05's EventInvitation class, as section 2 writes it (the final models.py
    has it, plus Exercise 3's channel column)."""
    match = re.search(r"\n\nclass EventInvitation\(db\.Model\):\n(    .*\n)+",
                      (lab05_chain / "models.py").read_text())
    assert match, "lab 05's models.py has no EventInvitation"
    return re.sub(r"    channel = .*\n", "", match.group(0))


# -- the failure the lab starts from -----------------------------------------------

def test_autogenerated_revision_fails_in_one_line_and_changes_nothing(tmp_path, db_url,
                                                                      lab05_chain):
    """Autogenerate writes sa.Enum(..., name='contacteventstatus') for the new
    table; the upgrade fails with one DuplicateObject line and a non-zero status,
    and the database is exactly as before (transactional DDL)."""
    folder = workspace.build(tmp_path / "lab05-start", labs.get("lab05")[0])
    models = folder / "models.py"
    models.write_text((workspace.MODELS).read_text()
                      + event_invitation_model(lab05_chain))
    flask_in(folder, "db", "upgrade", check=True)
    load_sample_rows(db_url)

    proc = flask_in(folder, "db", "migrate", "-m", "add event invitations", "--rev-id", "0002")
    assert proc.returncode == 0, proc.stdout
    revision = (folder / "migrations" / "versions" / "0002_add_event_invitations.py").read_text()
    assert f"sa.Enum({QUOTED}, name='contacteventstatus')" in revision
    assert "create_type" not in revision

    before = state(db_url)
    proc = flask_in(folder, "db", "upgrade")
    assert one_line_error(proc) == (
        'Error: DuplicateObject: type "contacteventstatus" already exists '
        f"[SQL: CREATE TYPE contacteventstatus AS ENUM ({QUOTED})]. "
        "Nothing was applied; the database is still at 0001."
    )
    after = state(db_url)
    assert after == before
    assert after["version"] == ["0001"]
    assert "event_invitations" not in after["rows"]
    assert after["rows"]["contact_events"] == 8
    assert [name for name, _ in after["types"]] == ["contacteventstatus", "dealcurrency"]

    # the lab's warning: from an empty database, in ONE upgrade run, the same revision
    # passes (Alembic's DDL runner remembers the type 0001 created in that run)
    flask_in(folder, "db", "downgrade", "base", check=True)
    proc = flask_in(folder, "db", "upgrade")
    assert proc.returncode == 0, proc.stdout
    assert used_by(db_url) == [
        ("contacteventstatus", ["contact_events.status", "event_invitations.status"]),
        ("dealcurrency", ["deals.currency"]),
    ]


@pytest.mark.parametrize("fixed", [False, True], ids=["unfixed 0002", "fixed 0002"])
def test_pytest_alembic_test_upgrade_catches_the_unfixed_revision(alembic_runner_for, lab05_chain, fixed):
    """Section 4's claim: test_upgrade upgrades one revision at a time, each in a
    migration context of its own, so the unfixed 0002 fails it (DuplicateObject,
    stopping at 0001), although one `flask db upgrade` base -> head passes;
    test_up_down_consistency reports it too. Fixed, both pass."""
    if fixed:
        alembic_tests.test_upgrade(alembic_runner_for(lab05_chain))
        return
    unfix(lab05_chain)
    runner = alembic_runner_for(lab05_chain)
    with pytest.raises(sa.exc.ProgrammingError,
                       match='DuplicateObject.*type "contacteventstatus" already exists'):
        alembic_tests.test_upgrade(runner)
    assert runner.current == "0001"
    runner.migrate_down_to("base", return_current=False)
    with pytest.raises(Exception, match="Failed to upgrade through each revision individually"):
        alembic_tests.test_up_down_consistency(runner)


def test_add_column_creates_no_enum_type(tmp_path, db_url):
    """Exercise 3: a new enum type on an added column must be created by the
    revision itself; op.add_column does not, with or without create_type=False."""
    folder = workspace.build(tmp_path / "ws", labs.get("lab05")[0])
    flask_in(folder, "db", "upgrade", check=True)
    revision = folder / "migrations" / "versions" / "0002_channel.py"
    for type_ in ("sa.Enum('EMAIL', 'PHONE', name='invitationchannel')",
                  "postgresql.ENUM('EMAIL', 'PHONE', name='invitationchannel', create_type=False)"):
        revision.write_text(
            "from alembic import op\nimport sqlalchemy as sa\n"
            "from sqlalchemy.dialects import postgresql\n\n"
            "revision = '0002'\ndown_revision = '0001'\n\n\n"
            f"def upgrade():\n    op.add_column('contacts', sa.Column('channel', {type_}))\n\n\n"
            "def downgrade():\n    op.drop_column('contacts', 'channel')\n")
        assert one_line_error(flask_in(folder, "db", "upgrade")) == (
            'Error: UndefinedObject: type "invitationchannel" does not exist '
            "[SQL: ALTER TABLE contacts ADD COLUMN channel invitationchannel]. "
            "Nothing was applied; the database is still at 0001.")


# -- the lab's fixed chain ------------------------------------------------------------

def test_chain_is_the_one_the_lab_builds(lab05_chain):
    versions = sorted(p.name for p in (lab05_chain / "migrations" / "versions").glob("*.py"))
    assert [v.split("_")[0] for v in versions] == REVISIONS
    fixed = (lab05_chain / "migrations" / "versions" / "0002_add_event_invitations.py").read_text()
    upgrade, _, downgrade = fixed.partition("def downgrade")
    assert "create_type=False" in upgrade and "sa.Enum(" not in upgrade
    assert "op.drop_table('event_invitations')" in downgrade
    assert ".drop(" not in downgrade  # no Enum(...).drop(): 0001 owns the type


def test_after_lab05_one_contacteventstatus_type_serves_every_table(lab05_chain, db_url):
    proc = flask_in(lab05_chain, "db", "upgrade")
    assert proc.returncode == 0, proc.stdout
    assert used_by(db_url) == [
        ("contacteventstatus", ["contact_events.status", "event_invitations.status",
                                "event_status_changes.new_status",
                                "event_status_changes.old_status"]),
        ("dealcurrency", ["deal_payments.currency", "deals.currency"]),
        ("invitationchannel", ["event_invitations.channel"]),
    ]
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        # in any schema of the database, not only the current one
        named = conn.execute(sa.text(
            "SELECT count(*) FROM pg_type WHERE typname = 'contacteventstatus'")).scalar()
    assert named == 1
    assert dict(state(db_url)["types"])["contacteventstatus"] == ",".join(LABELS)


def test_each_revision_downgrades_to_the_schema_below_it(app, db_url, lab05_chain):
    """Up one revision at a time (recording each state, sample rows loaded at
    0001), then down one at a time: each downgrade must give back the recorded
    state exactly, rows of the older tables included; then up to head again."""
    from flask_migrate import downgrade, upgrade

    directory = str(lab05_chain / "migrations")
    states = {}
    with app.app_context():
        for revision in REVISIONS:
            upgrade(directory, revision)
            if revision == "0001":
                load_sample_rows(db_url)
            states[revision] = state(db_url)
            assert states[revision]["version"] == [revision]
        for below, revision in reversed(list(zip(REVISIONS, REVISIONS[1:], strict=False))):
            downgrade(directory, below)
            assert state(db_url) == states[below], f"downgrade {revision} -> {below}"
        downgrade(directory, "base")  # 0001: every table and both enum types
        base = state(db_url)
        assert base["types"] == [] and base["rows"] == {"alembic_version": 0}
        upgrade(directory, "head")
    head = state(db_url)
    assert head["columns"] == states["0005"]["columns"] and head["types"] == states["0005"]["types"]
    assert head["version"] == ["0005"]


def test_downgrade_keeps_the_type_until_its_owner_goes(app, db_url, lab05_chain):
    from flask_migrate import downgrade, upgrade

    directory = str(lab05_chain / "migrations")
    with app.app_context():
        upgrade(directory, "0002")
        downgrade(directory, "0001")
        assert used_by(db_url) == [("contacteventstatus", ["contact_events.status"]),
                                   ("dealcurrency", ["deals.currency"])]
        downgrade(directory, "base")
        assert state(db_url)["types"] == []


def test_dropping_the_shared_type_in_downgrade_fails_and_rolls_back(lab05_chain, db_url):
    """Lab 01's habit in 0002's downgrade: DROP TYPE fails (contact_events.status
    uses it), and the DROP TABLE that ran before it in the same transaction is undone."""
    revision = lab05_chain / "migrations" / "versions" / "0002_add_event_invitations.py"
    text = revision.read_text()
    drop_table = "    op.drop_table('event_invitations')\n"
    assert drop_table in text
    revision.write_text(text.replace(
        drop_table,
        drop_table + "    sa.Enum(name='contacteventstatus').drop(op.get_bind(), checkfirst=True)\n"))
    flask_in(lab05_chain, "db", "upgrade", "0002", check=True)
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO contacts (id, name, email) VALUES (1, 'A', 'a@example.com')"))
        conn.execute(sa.text("INSERT INTO event_invitations (contact_id, event_title, status)"
                             " VALUES (1, 'Launch', 'ATTENDED')"))
    before = state(db_url)
    proc = flask_in(lab05_chain, "db", "downgrade")
    assert one_line_error(proc) == (
        "Error: DependentObjectsStillExist: cannot drop type contacteventstatus because other "
        "objects depend on it [SQL: DROP TYPE contacteventstatus]. "
        "Nothing was undone; the database is still at 0002."
    )
    after = state(db_url)
    assert after == before
    assert after["version"] == ["0002"] and after["rows"]["event_invitations"] == 1
