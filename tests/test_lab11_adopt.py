"""Lab 11's claims about adopting a database that never had migrations, on the
real server, from the lab's own brownfield start (labapp/runtime/brownfield.py):

* The first `flask db migrate` against a `db.create_all()` database writes no
  table: only the drop of the index it does not know. It also leaves an empty
  `alembic_version` table behind (nothing recorded).
* A second `db = SQLAlchemy()` in models.py hides the models from env.py:
  autogenerate writes `drop_table` for every table.
* Alembic applies the models' naming convention to the unnamed constraints of
  an old revision's `create_table`: a baseline must pin the server's names, or
  a new database gets other names than production.
* With the convention set, autogenerate sees a unique constraint or an index of
  another name as a drop and a create, and never compares primary or foreign
  key names. `RENAME CONSTRAINT` renames the constraint's index too and
  rewrites no table.
* A `drop_constraint(None, ...)` fails in one line, and nothing is undone.
* `flask db stamp` of a database whose alembic_version names a lost revision
  fails without `--purge`, and works with it, touching no table.
* CHECK constraints: not compared by default; with the opt-in plugin an added
  one is seen by name, a changed condition is not.
* A changed server default is seen only with `compare_server_default`.
* schema.diff, the proof of every "identical" the lab shows, sees each difference
  that matters: type, collation, NOT NULL, default, identity, column order,
  constraint names and definitions, index definitions (UNIQUE, columns, WHERE),
  enum labels.
"""
import shutil

import pytest

from helpers import assert_one_line_error, flask_in, postgres_only, revision_source, rows, unique_name
from labapp.runtime import lab, labs, schema, workspace
from labapp.server import database

pytestmark = [postgres_only,
              pytest.mark.filterwarnings("ignore:'get_engine' is deprecated:DeprecationWarning")]

VERSIONS = "migrations/versions"
CONVENTION = '''
db.metadata.naming_convention = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
'''
HAND_INDEX = '''
    __table_args__ = (db.Index("deals_contact_id_idx", "contact_id"),)
'''
# lab 11's baseline (section 3), with {pk_contacts} ... where it pins the server's names
BASELINE = """\
    op.create_table('contacts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('email', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id'{contacts_pkey}),
    sa.UniqueConstraint('email'{contacts_email_key})
    )
    op.create_table('deals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('amount', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('currency', sa.String(length=3), server_default='USD', nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], {deals_contact_id_fkey}),
    sa.PrimaryKeyConstraint('id'{deals_pkey})
    )
    op.create_index('deals_contact_id_idx', 'deals', ['contact_id'], unique=False)
"""
NAMES = ("contacts_pkey", "contacts_email_key", "deals_contact_id_fkey", "deals_pkey")


def baseline(pinned=True):
    names = {n: (f"name={n!r}" if n.endswith("fkey") else f", name={n!r}") if pinned else ""
             for n in NAMES}
    return revision_source("0001", None, BASELINE.format(**names),
                           "    op.drop_table('deals')\n    op.drop_table('contacts')\n")


@pytest.fixture
def production(tmp_path, monkeypatch):
    """Lab 11's production (a database of the test's own) and its workspace, as the
    lab's setup cell makes them; `flask` in the workspace uses that database."""
    spec, _ = labs.get("lab11")
    made = lab.Lab(spec, notebooks=tmp_path, suffix="_" + unique_name())
    monkeypatch.setenv("LABAPP_DATABASE", made.database)
    made.reset()
    made.others = []
    yield made
    for other in made.others:
        database.drop_database(other.url, missing_ok=True)
    database.drop_database(made.url, missing_ok=True)
    shutil.rmtree(made.workspace, ignore_errors=True)


def empty_database(prod):
    """Another fresh database beside production (dropped with it)."""
    other = prod.sibling("_" + unique_name())
    database.create_database(other.url)
    prod.others.append(other)
    return other


def on(other):
    return {"LABAPP_DATABASE": other.database}


def names(target):
    """{constraint or index name} in the lab's schema, alembic_version aside."""
    found = rows(target.url, "SELECT conname FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid"
                             " WHERE c.relname IN ('contacts', 'deals')")
    found += rows(target.url, "SELECT indexname FROM pg_indexes WHERE tablename IN ('contacts', 'deals')")
    return {name for (name,) in found}


def edit(path, old, new):
    text = path.read_text()
    assert text.count(old) == 1, (old, text)
    path.write_text(text.replace(old, new))


def init(ws):
    workspace.init_migrations(ws / "migrations")
    workspace.quiet_alembic_logging(ws / "migrations" / "alembic.ini")


def adopted(prod, pinned=True):
    """Production after section 3: the hand-made index in models.py, the baseline
    written, production stamped with it."""
    ws = prod.workspace
    init(ws)
    edit(ws / "models.py", '    currency = db.Column(db.String(3), nullable=False, server_default="USD")\n',
         '    currency = db.Column(db.String(3), nullable=False, server_default="USD")\n' + HAND_INDEX)
    (ws / VERSIONS / "0001_baseline.py").write_text(baseline(pinned))
    flask_in(ws, "db", "stamp", "0001", check=True)
    return ws


def test_the_first_migrate_against_a_create_all_database_writes_no_table(production):
    ws = production.workspace
    assert rows(production.url, "SELECT to_regclass('alembic_version')") == [(None,)]
    init(ws)
    flask_in(ws, "db", "migrate", "-m", "first try", "--rev-id", "0001", check=True)
    text = (ws / VERSIONS / "0001_first_try.py").read_text()
    upgrade = text.partition("def upgrade")[2].partition("def downgrade")[0]
    assert "drop_index(batch_op.f('deals_contact_id_idx'))" in upgrade, text
    assert "create_table" not in upgrade and "drop_table" not in upgrade, text
    # what migrate left behind: the version table, empty
    assert rows(production.url, "SELECT count(*) FROM alembic_version") == [(0,)]


def test_a_second_db_in_models_makes_autogenerate_drop_every_table(production):
    ws = production.workspace
    init(ws)
    edit(ws / "models.py", "from labapp import db\n",
         "from flask_sqlalchemy import SQLAlchemy\n\ndb = SQLAlchemy()\n")
    flask_in(ws, "db", "migrate", "-m", "first try", "--rev-id", "0001", check=True)
    upgrade = (ws / VERSIONS / "0001_first_try.py").read_text().partition("def downgrade")[0]
    assert "op.drop_table('contacts')" in upgrade and "op.drop_table('deals')" in upgrade
    assert rows(production.url, "SELECT count(*) FROM contacts") == [(3,)]  # nothing ran


@pytest.mark.parametrize("pinned", [True, False], ids=["pinned", "unpinned"])
def test_the_convention_renames_an_old_revisions_unnamed_constraints(production, pinned):
    """The reason section 3 pins the server's names in the baseline."""
    ws = adopted(production, pinned)
    new = empty_database(production)
    flask_in(ws, "db", "upgrade", env=on(new), check=True)
    assert names(new) == names(production)  # before the convention: the same either way
    edit(ws / "models.py", "from labapp import db\n", "from labapp import db\n" + CONVENTION)
    newer = empty_database(production)
    flask_in(ws, "db", "upgrade", env=on(newer), check=True)
    if pinned:
        assert names(newer) == names(production)
    else:
        assert {"pk_contacts", "uq_contacts_email", "pk_deals",
                "fk_deals_contact_id_contacts"} <= names(newer), names(newer)
        assert not set(NAMES) & names(newer)


def test_autogenerate_rebuilds_a_unique_or_index_of_another_name_and_ignores_pk_fk(production):
    ws = adopted(production)
    edit(ws / "models.py", "from labapp import db\n", "from labapp import db\n" + CONVENTION)
    edit(ws / "models.py", HAND_INDEX, "\n")
    edit(ws / "models.py", 'db.ForeignKey("contacts.id"), nullable=False)',
         'db.ForeignKey("contacts.id"), nullable=False, index=True)')
    flask_in(ws, "db", "migrate", "-m", "names", "--rev-id", "0002", check=True)
    upgrade = (ws / VERSIONS / "0002_names.py").read_text().partition("def downgrade")[0]
    assert "drop_constraint(batch_op.f('contacts_email_key'), type_='unique')" in upgrade, upgrade
    assert "create_unique_constraint(batch_op.f('uq_contacts_email'), ['email'])" in upgrade, upgrade
    assert "drop_index(batch_op.f('deals_contact_id_idx'))" in upgrade, upgrade
    assert "create_index(batch_op.f('ix_deals_contact_id')" in upgrade, upgrade
    assert "pkey" not in upgrade and "fkey" not in upgrade and "pk_" not in upgrade, upgrade


def test_rename_constraint_renames_its_index_and_rewrites_nothing(production):
    url = production.url
    before = rows(url, "SELECT pg_relation_filenode('contacts'), pg_relation_filenode('deals')")
    rows(url, "ALTER TABLE contacts RENAME CONSTRAINT contacts_pkey TO pk_contacts")
    rows(url, "ALTER TABLE contacts RENAME CONSTRAINT contacts_email_key TO uq_contacts_email")
    indexes = {n for (n,) in rows(url, "SELECT indexname FROM pg_indexes WHERE tablename = 'contacts'")}
    assert indexes == {"pk_contacts", "uq_contacts_email"}
    assert rows(url, "SELECT pg_relation_filenode('contacts'), pg_relation_filenode('deals')") == before


def test_a_nameless_drop_constraint_fails_in_one_line_and_undoes_nothing(production):
    ws = adopted(production)
    (ws / VERSIONS / "0002_unique.py").write_text(revision_source(
        "0002", "0001", "    op.create_unique_constraint(None, 'deals', ['contact_id', 'title'])\n",
        "    op.drop_constraint(None, 'deals', type_='unique')\n"))
    flask_in(ws, "db", "upgrade", check=True)
    proc = flask_in(ws, "db", "downgrade")
    assert_one_line_error(proc, "CompileError", "it has no name",
                          "Nothing was undone; the database is still at 0002")
    assert "deals_contact_id_title_key" in names(production)


def test_stamping_over_a_lost_revision_needs_purge_and_touches_no_table(production):
    ws = adopted(production)
    rows(production.url, "UPDATE alembic_version SET version_num = 'b0b1'")
    before = names(production), rows(production.url, "SELECT count(*) FROM deals")
    for command in (("current",), ("upgrade",), ("stamp", "0001")):
        proc = flask_in(ws, "db", *command)
        assert proc.returncode != 0 and "Can't locate revision identified by 'b0b1'" in proc.output
    flask_in(ws, "db", "stamp", "--purge", "0001", check=True)
    assert rows(production.url, "SELECT version_num FROM alembic_version") == [("0001",)]
    assert (names(production), rows(production.url, "SELECT count(*) FROM deals")) == before


PLUGIN = '''
app.extensions["migrate"].configure_args["autogenerate_plugins"] = [
    "alembic.autogenerate.*", "alembic.ext.checkconstraint_byname"]
'''


def test_check_constraints_are_compared_only_with_the_plugin_and_only_by_name(production):
    ws = adopted(production)
    edit(ws / "models.py", HAND_INDEX,
         '\n    __table_args__ = (db.Index("deals_contact_id_idx", "contact_id"),\n'
         '                      db.CheckConstraint("amount >= 0", name="amount_not_negative"))\n')
    assert flask_in(ws, "db", "check").returncode == 0  # not compared by default
    (ws / "app.py").write_text((ws / "app.py").read_text() + PLUGIN)
    proc = flask_in(ws, "db", "check")
    assert proc.returncode != 0 and "add_constraint" in proc.output, proc.output
    flask_in(ws, "db", "migrate", "-m", "check", "--rev-id", "0002", check=True)
    flask_in(ws, "db", "upgrade", check=True)
    edit(ws / "models.py", '"amount >= 0"', '"amount > 0"')
    assert flask_in(ws, "db", "check").returncode == 0  # a changed condition: not seen


def test_a_changed_server_default_is_seen_only_with_compare_server_default(production):
    ws = adopted(production)
    edit(ws / "models.py", 'server_default="USD"', 'server_default="EUR"')
    proc = flask_in(ws, "db", "check")
    assert proc.returncode == 0, proc.output
    (ws / "app.py").write_text((ws / "app.py").read_text()
                               + '\napp.extensions["migrate"].configure_args["compare_server_default"] = True\n')
    proc = flask_in(ws, "db", "check")
    assert proc.returncode != 0 and "modify_default" in proc.output, proc.output


# schema.diff, the proof of section 3's baseline (and of sections 5, 6 and Exercise 1):
# two databases that differ in one thing that matters must not compare `identical`
SAME_TABLE = "CREATE TABLE t (id serial PRIMARY KEY, a integer NOT NULL DEFAULT 1, b text)"
DIFFERENCES = {
    "type": ("CREATE TABLE t (a integer)", "CREATE TABLE t (a bigint)"),
    "length": ("CREATE TABLE t (a varchar(3))", "CREATE TABLE t (a varchar(4))"),
    "nullability": ("CREATE TABLE t (a integer NOT NULL)", "CREATE TABLE t (a integer)"),
    "default": ("CREATE TABLE t (a text DEFAULT 'USD')", "CREATE TABLE t (a text DEFAULT 'EUR')"),
    "column order": ("CREATE TABLE t (a integer, b integer)", "CREATE TABLE t (b integer, a integer)"),
    "collation": ('CREATE TABLE t (a text COLLATE "C")', "CREATE TABLE t (a text)"),
    "identity": ("CREATE TABLE t (a integer GENERATED BY DEFAULT AS IDENTITY)",
                 "CREATE TABLE t (a integer NOT NULL)"),
    "constraint name": ("CREATE TABLE t (a integer CONSTRAINT t_a_key UNIQUE)",
                        "CREATE TABLE t (a integer CONSTRAINT uq_t_a UNIQUE)"),
    "check condition": ("CREATE TABLE t (a integer CONSTRAINT ck_t_a CHECK (a >= 0))",
                        "CREATE TABLE t (a integer CONSTRAINT ck_t_a CHECK (a > 0))"),
    "foreign key action": (
        "CREATE TABLE p (id integer PRIMARY KEY); CREATE TABLE t (a integer CONSTRAINT t_a_fkey"
        " REFERENCES p ON DELETE CASCADE)",
        "CREATE TABLE p (id integer PRIMARY KEY); CREATE TABLE t (a integer CONSTRAINT t_a_fkey"
        " REFERENCES p)"),
    "unique index": ("CREATE TABLE t (a integer); CREATE UNIQUE INDEX t_a_idx ON t (a)",
                     "CREATE TABLE t (a integer); CREATE INDEX t_a_idx ON t (a)"),
    "index columns": ("CREATE TABLE t (a integer, b integer); CREATE INDEX t_idx ON t (a)",
                      "CREATE TABLE t (a integer, b integer); CREATE INDEX t_idx ON t (b)"),
    "partial index": ("CREATE TABLE t (a integer); CREATE INDEX t_idx ON t (a) WHERE a > 0",
                      "CREATE TABLE t (a integer); CREATE INDEX t_idx ON t (a)"),
    "enum labels": ("CREATE TYPE e AS ENUM ('x', 'y'); CREATE TABLE t (a e)",
                    "CREATE TYPE e AS ENUM ('x'); CREATE TABLE t (a e)"),
}


@pytest.fixture
def two_databases(tmp_path):
    spec, _ = labs.get("lab11")
    pair = [lab.Lab(spec, notebooks=tmp_path, suffix="_" + unique_name()) for _ in range(2)]
    for each in pair:
        database.create_database(each.url)
    yield pair
    for each in pair:
        database.drop_database(each.url, missing_ok=True)


def diff_of(a, b, capsys):
    schema.diff(a, b)
    return capsys.readouterr().out


def test_schema_diff_says_identical_only_for_the_same_schema(two_databases, capsys):
    a, b = two_databases
    for each in (a, b):
        rows(each.url, SAME_TABLE)
        rows(each.url, "CREATE INDEX t_b_idx ON t (b)")
    assert diff_of(a, b, capsys) == "identical: 1 table, 3 columns, 1 constraint, 1 index\n"


@pytest.mark.parametrize("kind", DIFFERENCES)
def test_schema_diff_sees_every_difference_that_matters(two_databases, capsys, kind):
    a, b = two_databases
    for each, ddl in zip((a, b), DIFFERENCES[kind], strict=True):
        for statement in ddl.split("; "):
            rows(each.url, statement)
    out = diff_of(a, b, capsys)
    assert not out.startswith("identical"), out
    assert out.startswith(f"--- {a.database}\n+++ {b.database}\n"), out
