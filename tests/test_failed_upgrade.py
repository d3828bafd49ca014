"""A failed `flask db upgrade` says what really happened, read from alembic_version
before and after: nothing (one transaction, rolled back), or what an
`autocommit_block` or `transaction_per_migration` had committed first.

Each test runs `flask db upgrade` as a learner does, in a workspace at revision
0001 with the sample rows, then checks the database against the line.
"""
import pytest

from helpers import (alembic_versions, assert_one_line_error, column_names, count_rows, enum_labels, flask_in,
                     postgres_only, revision_source, rows)
from labapp.commands import outcome
from labapp.runtime import labs, workspace

pytestmark = [postgres_only,
              pytest.mark.filterwarnings("ignore:'get_engine' is deprecated:DeprecationWarning")]

ADD_PHONE = '''    op.add_column("contacts", sa.Column("phone", sa.String(30)))
    op.execute("UPDATE contacts SET phone = '555'")
'''
FAIL = '''    op.create_table("contacts", sa.Column("id", sa.Integer, primary_key=True))  # exists already
'''
ADD_BTC = '''    with op.get_context().autocommit_block():
        op.execute("ALTER TYPE dealcurrency ADD VALUE 'BTC'")
'''


@pytest.fixture
def project(tmp_path, db_name):
    """A lab workspace at 0001 with the sample rows."""
    folder = workspace.build(tmp_path / "ws", labs.get("lab02")[0])
    for args in (("db", "upgrade"), ("loaddata",)):
        flask_in(folder, *args, check=True)
    return folder


def write(folder, rev, down, body):
    (folder / "migrations" / "versions" / f"{rev}_x.py").write_text(revision_source(rev, down, body))


def test_a_plain_failure_applied_nothing(project, db_url):
    write(project, "0002", "0001", ADD_PHONE)
    write(project, "0003", "0002", FAIL)
    proc = flask_in(project, "db", "upgrade")
    assert_one_line_error(proc, "DuplicateTable", 'relation "contacts" already exists',
                          "Nothing was applied; the database is still at 0001.")
    assert alembic_versions(db_url) == ["0001"]
    assert "phone" not in column_names(db_url, "contacts")  # 0002's work went with the transaction
    assert count_rows(db_url, "contacts") == 6


def test_work_before_an_autocommit_block_stays_committed(project, db_url):
    """0002 ran, then 0003's autocommit_block committed it (and its own ADD VALUE),
    then 0003 failed: 0002 stays, and the line says so."""
    write(project, "0002", "0001", ADD_PHONE)
    write(project, "0003", "0002", ADD_BTC + FAIL)
    proc = flask_in(project, "db", "upgrade")
    assert_one_line_error(
        proc, "DuplicateTable",
        "0002 was committed before the failure (autocommit_block; it also committed: "
        "ALTER TYPE dealcurrency ADD VALUE 'BTC'); the database is now at 0002.")
    assert alembic_versions(db_url) == ["0002"]
    assert "phone" in column_names(db_url, "contacts")
    assert enum_labels(db_url)[-1] == "BTC"


def test_a_revision_committed_before_the_failing_one_autocommit_block(project, db_url):
    """The issue's case: 0002 is plain, 0003 opens with an autocommit_block and
    fails after it: 0002 is in, and so is 0003's ADD VALUE."""
    write(project, "0002", "0001", ADD_PHONE)
    write(project, "0003", "0002", ADD_BTC + "    op.execute(\"UPDATE contacts SET phone = 'x'\")\n"
                  + FAIL)
    proc = flask_in(project, "db", "upgrade")
    assert "Error: DuplicateTable" in proc.output
    assert "0002 was committed before the failure (autocommit_block" in proc.output
    assert alembic_versions(db_url) == ["0002"]
    assert rows(db_url, "SELECT DISTINCT phone FROM contacts") == [("555",)]  # 0003's UPDATE undone


def test_transaction_per_migration_commits_each_revision(project, db_url):
    env_py = project / "migrations" / "env.py"
    text = env_py.read_text()
    assert "            target_metadata=get_metadata(),\n" in text
    env_py.write_text(text.replace("            target_metadata=get_metadata(),\n",
                                   "            target_metadata=get_metadata(),\n"
                                   "            transaction_per_migration=True,\n", 1))
    write(project, "0002", "0001", ADD_PHONE)
    write(project, "0003", "0002", FAIL)
    proc = flask_in(project, "db", "upgrade")
    assert_one_line_error(proc, "0002 was committed before the failure "
                                "(transaction_per_migration); the database is now at 0002.")
    assert alembic_versions(db_url) == ["0002"] and "phone" in column_names(db_url, "contacts")


def test_an_autocommit_block_in_the_failing_revision_alone(project, db_url):
    """Nothing moved alembic_version, but the block's statement is committed: the line
    must not claim that nothing changed."""
    write(project, "0002", "0001", ADD_BTC + FAIL)
    proc = flask_in(project, "db", "upgrade")
    assert_one_line_error(proc, "Nothing was applied; the database is still at 0001 "
                                "(but its autocommit_block committed: "
                                "ALTER TYPE dealcurrency ADD VALUE 'BTC').")
    assert alembic_versions(db_url) == ["0001"] and enum_labels(db_url)[-1] == "BTC"


def test_work_before_the_block_in_the_failing_revision_is_named(project, db_url):
    """The block commits the failing revision's own work before it too: the line
    names that work, although no revision records it."""
    write(project, "0002", "0001", ADD_PHONE + ADD_BTC + FAIL)
    proc = flask_in(project, "db", "upgrade")
    assert_one_line_error(proc, "Nothing was applied; the database is still at 0001 "
                                "(but its autocommit_block committed: "
                                "ALTER TABLE contacts ADD COLUMN phone VARCHAR(30); "
                                "UPDATE contacts SET phone = '555' and 1 more).")
    assert alembic_versions(db_url) == ["0001"] and "phone" in column_names(db_url, "contacts")
    assert enum_labels(db_url)[-1] == "BTC"


def test_a_statement_that_fails_in_the_block_is_not_called_committed(project, db_url):
    """ADD VALUE of a label that exists fails in the block: nothing claims it
    committed, and the line says that nothing rolled back what it did."""
    write(project, "0002", "0001", ADD_PHONE)
    write(project, "0003", "0002", ADD_BTC.replace("'BTC'", "'USD'"))
    proc = flask_in(project, "db", "upgrade")
    assert_one_line_error(proc, "DuplicateObject", 'enum label "USD" already exists',
                          "0002 was committed before the failure (autocommit_block); "
                          "the database is now at 0002; the failed statement ran in an "
                          "autocommit_block, outside any transaction: nothing rolled back "
                          "what it left.")
    assert alembic_versions(db_url) == ["0002"] and "phone" in column_names(db_url, "contacts")


def test_a_failed_downgrade_undid_nothing(project, db_url):
    write(project, "0002", "0001", ADD_PHONE)
    flask_in(project, "db", "upgrade", check=True)
    revision = project / "migrations" / "versions" / "0002_x.py"
    revision.write_text(revision.read_text().replace(
        "def downgrade():\n    pass\n",
        "def downgrade():\n    op.drop_column('contacts', 'phone')\n"
        "    op.execute('DROP TABLE no_such_table')\n"))
    proc = flask_in(project, "db", "downgrade")
    assert_one_line_error(proc, "UndefinedTable",
                          "Nothing was undone; the database is still at 0002.")
    assert alembic_versions(db_url) == ["0002"] and "phone" in column_names(db_url, "contacts")


@pytest.mark.parametrize("before, after, seen, expected", [
    (("0001",), ("0001",), {"autocommit": [], "commits": 0},
     "Nothing was applied; the database is still at 0001"),
    ((), (), {"autocommit": [], "commits": 0},
     "Nothing was applied; the database is still at base (no revision)"),
    (("0001",), None, {"autocommit": [], "commits": 0},
     "Where it stopped is unknown (alembic_version could not be read): run `flask db current`"),
])
def test_story_wording(before, after, seen, expected):
    assert outcome.story("upgrade", before, after, seen, "migrations") == expected


def test_story_on_a_server_without_transactional_ddl():
    assert outcome.story("upgrade", ("0001",), ("0001",), {"autocommit": [], "commits": 0},
                         "migrations", backend="mysql") == (
        "MySQL/MariaDB does not roll back DDL, so what ran before the error stays; "
        "the database is now at 0001")
