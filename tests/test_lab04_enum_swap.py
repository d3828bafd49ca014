"""Lab 04 (enum swap, DealCurrency gains BTC): its claims, on the real server.

The chain is the lab's end state, tests/chains/lab04.patch: 0002 the team's
recipe update_deal_enums() verbatim (BTC), 0003 a teammate's default, partial
index and second column, 0004 the recipe again for JPY with its three fixes and
a downgrade that refuses rows holding JPY, 0005 RENAME VALUE BTC -> XBT, 0006
CHF by ADD VALUE in an autocommit block, 0007 SGD as alembic-postgresql-enum
wrote it (made safe both ways by the exercises). The tests drive it with
`flask db ...` as the notebook does, on a fresh database with the sample data.
"""
import pytest
import sqlalchemy as sa

from helpers import alembic_versions, column_names, enum_labels, flask_in, postgres_only, rows
from labapp.live import observatory
from labapp.runtime import labs, workspace
from tools import scenarios

OLD = ["USD", "EUR", "AED", "GBP"]
HEAD = OLD + ["XBT", "JPY", "CHF", "SGD"]
PARTIAL_INDEX = ("CREATE INDEX ix_deals_usd_amount ON public.deals USING btree (amount)"
                 " WHERE (currency = 'USD'::dealcurrency)")

pytestmark = [postgres_only,
              pytest.mark.filterwarnings("ignore:'get_engine' is deprecated:DeprecationWarning")]


def failure(folder, *args):
    """The one `Error:` line of a command that must fail."""
    proc = flask_in(folder, *args)
    assert proc.returncode == 1, proc.output
    [line] = [line for line in proc.output.splitlines() if "Error: " in line]
    return line


def snapshot(url):
    """Every row of contacts and deals, currencies as text: equal means no row changed."""
    preferred = "preferred_currency::text" if "preferred_currency" in column_names(url, "contacts") \
        else "NULL"
    return (rows(url, f"SELECT id, name, email, {preferred} FROM contacts ORDER BY id"),
            rows(url, "SELECT id, contact_id, title, amount, currency::text FROM deals ORDER BY id"))


def filenode(url, table):
    return rows(url, "SELECT pg_relation_filenode(:t)", t=table)[0][0]


def currency_columns(url):
    return rows(url, "SELECT table_name, column_name, udt_name, column_default"
                     " FROM information_schema.columns WHERE table_schema = current_schema()"
                     " AND udt_name LIKE '%dealcurrency' ORDER BY 1, 2")


def partial_index(url):
    return rows(url, "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_deals_usd_amount'")


def revision_file(folder, name):
    [path] = (folder / "migrations" / "versions").glob(f"{name}_*.py")
    return path


def test_plain_autogenerate_misses_btc_and_the_database_rejects_it(db_url, tmp_path):
    """Section 2: BTC in the model, yet `flask db check` passes; the database
    refuses a BTC deal; with alembic_postgresql_enum imported, check fails."""
    models = (workspace.MODELS).read_text()
    assert "    GBP = 3\n" in models
    ws = workspace.build(tmp_path / "ws", labs.get("lab04")[0])
    (ws / "models.py").write_text(models.replace("    GBP = 3\n", "    GBP = 3\n    BTC = 4\n"))
    flask_in(ws, "db", "upgrade", check=True)
    assert "No new upgrade operations detected" in flask_in(ws, "db", "check", check=True).output
    with pytest.raises(sa.exc.DataError, match='invalid input value for enum dealcurrency: "BTC"'):
        rows(db_url, "INSERT INTO contacts (id, name, email) VALUES (1, 'A', 'a@example.com');"
                     "INSERT INTO deals (contact_id, title, amount, currency)"
                     " VALUES (1, 'Bitcoin pilot', 0.75, 'BTC')")
    env_py = ws / "migrations" / "env.py"
    env_py.write_text(env_py.read_text().replace(
        "from alembic import context\n", "from alembic import context\nimport alembic_postgresql_enum\n"))
    check = flask_in(ws, "db", "check")
    assert check.returncode == 1 and "add_enum_value" in check.output, check.output


def test_the_team_recipe_works_on_the_plain_schema(db_url, chain):
    """Section 3: update_deal_enums() as the README has it adds BTC to 0001's
    schema, rewrites deals and keeps every row; its downgrade then fails on the
    BTC deal, rolled back (section 6: "the same puzzle")."""
    ws = chain("lab04")
    recipe = revision_file(ws, "0002").read_text()
    assert "def update_deal_enums(labels):" in recipe and "server_default" not in recipe
    flask_in(ws, "db", "upgrade", "0001", check=True)
    flask_in(ws, "loaddata", check=True)
    before, deals_file = snapshot(db_url), filenode(db_url, "deals")
    flask_in(ws, "db", "upgrade", "0002", check=True)
    assert enum_labels(db_url) == OLD + ["BTC"] and enum_labels(db_url, "_dealcurrency") == []
    assert snapshot(db_url) == before, "the recipe changed a row"
    assert filenode(db_url, "deals") != deals_file, "the swap rewrites the table"
    rows(db_url, "INSERT INTO deals (contact_id, title, amount, currency)"
                 " VALUES (2, 'Bitcoin pilot', 0.75, 'BTC')")
    with_btc = snapshot(db_url)
    assert failure(ws, "db", "downgrade") == (
        'Error: InvalidTextRepresentation: invalid input value for enum _dealcurrency: "BTC" '
        "[SQL: ALTER TABLE deals ALTER COLUMN currency TYPE _dealcurrency USING "
        "currency::text::_dealcurrency]. Nothing was undone; the database is still at 0002.")
    assert snapshot(db_url) == with_btc and enum_labels(db_url) == OLD + ["BTC"]


@pytest.mark.parametrize("literal", [
    "CREATE INDEX ix_usd ON deals (amount) WHERE currency = 'USD'",
    "ALTER TABLE deals ADD CONSTRAINT ck_no_aed CHECK (currency <> 'AED')",
], ids=["partial index", "check constraint"])
def test_a_label_in_an_index_or_check_fails_the_cast_until_dropped(schema, db_url, literal):
    """Section 5, trap 2: a partial index (and, the lab says, a CHECK) that names
    a label cannot follow the column to the temporary type; dropped before the
    swap and made again after, it does."""
    rows(db_url, "INSERT INTO contacts (id, name, email) VALUES (1, 'A', 'a@example.com');"
                 "INSERT INTO deals (contact_id, title, amount, currency) VALUES (1, 'd', 1, 'USD')")
    rows(db_url, literal)
    cast = scenarios.swap_through_temporary_type(OLD + ["BTC"])[:2]  # the temporary type, the first cast
    with pytest.raises(sa.exc.ProgrammingError, match="operator does not exist: _dealcurrency"):
        rows(db_url, ";".join(cast))
    drop = ("DROP INDEX ix_usd" if literal.startswith("CREATE INDEX")
            else "ALTER TABLE deals DROP CONSTRAINT ck_no_aed")
    rows(db_url, ";".join([drop, *cast, literal.replace("'USD'", "'USD'::_dealcurrency")
                                             .replace("'AED'", "'AED'::_dealcurrency")]))
    assert rows(db_url, "SELECT currency::text FROM deals") == [("USD",)]


def test_lab04_chain_keeps_every_row_up_and_down(db_url, chain):
    """The lab's journey with the sample data: the fixed recipe (0004) keeps
    every row and the default, index and second column; 0005-0007 rewrite
    nothing; their downgrades and 0004's keep every row, and 0004's refuses
    while a row holds JPY. (Every step down to base, on an empty database:
    tests/test_migration_chains.py.)"""
    ws = chain("lab04")
    flask_in(ws, "db", "upgrade", "0001", check=True)
    flask_in(ws, "loaddata", check=True)
    flask_in(ws, "db", "upgrade", "0003", check=True)
    rows(db_url, "UPDATE contacts SET preferred_currency = 'GBP' WHERE id IN (1, 3)")
    rows(db_url, "INSERT INTO deals (contact_id, title, amount, currency)"
                 " VALUES (2, 'Bitcoin pilot', 0.75, 'BTC')")
    before, deals_file = snapshot(db_url), filenode(db_url, "deals")

    flask_in(ws, "db", "upgrade", "0004", check=True)  # the recipe, fixed
    assert enum_labels(db_url) == OLD + ["BTC", "JPY"] and enum_labels(db_url, "_dealcurrency") == []
    assert snapshot(db_url) == before, "the swap changed a row"
    assert currency_columns(db_url) == [
        ("contacts", "preferred_currency", "dealcurrency", None),
        ("deals", "currency", "dealcurrency", "'USD'::dealcurrency"),
    ]
    assert partial_index(db_url) == [(PARTIAL_INDEX,)]
    assert filenode(db_url, "deals") != deals_file
    assert rows(db_url, "INSERT INTO deals (contact_id, title, amount) VALUES (1, 'x', 1)"
                        " RETURNING currency::text") == [("USD",)]  # the default survived
    rows(db_url, "DELETE FROM deals WHERE title = 'x'")

    [(jpy_deal,)] = rows(db_url, "INSERT INTO deals (contact_id, title, amount, currency)"
                                 " VALUES (4, 'Tokyo office', 3000000, 'JPY') RETURNING id")
    refused = flask_in(ws, "db", "downgrade")
    assert refused.returncode == 1
    assert "1 row(s) of deals.currency hold a currency that revision 0003 does not know" in refused.output
    assert alembic_versions(db_url) == ["0004"] and enum_labels(db_url) == OLD + ["BTC", "JPY"]
    with_jpy = snapshot(db_url)

    # 0005 (RENAME VALUE), 0006 and 0007 (ADD VALUE in autocommit blocks), in ONE upgrade
    deals_file = filenode(db_url, "deals")
    flask_in(ws, "db", "upgrade", check=True)
    assert alembic_versions(db_url) == ["0007"] and enum_labels(db_url) == HEAD
    assert rows(db_url, "SELECT currency::text FROM deals WHERE title = 'Bitcoin pilot'") == [("XBT",)]
    assert filenode(db_url, "deals") == deals_file, "ADD VALUE / RENAME VALUE rewrote deals"
    assert "No new upgrade operations detected" in flask_in(ws, "db", "check", check=True).output

    flask_in(ws, "db", "downgrade", check=True)  # 0007 -> 0006: the fixed sync_enum_values, index included
    assert enum_labels(db_url) == HEAD[:-1] and partial_index(db_url) == [(PARTIAL_INDEX,)]
    flask_in(ws, "db", "downgrade", check=True)  # 0006 -> 0005: no DROP VALUE, CHF stays
    assert enum_labels(db_url) == HEAD[:-1]
    flask_in(ws, "db", "downgrade", check=True)  # 0005 -> 0004: XBT is BTC again
    assert enum_labels(db_url) == OLD + ["BTC", "JPY", "CHF"] and snapshot(db_url) == with_jpy

    rows(db_url, "DELETE FROM deals WHERE id = :id", id=jpy_deal)
    flask_in(ws, "db", "downgrade", check=True)  # 0004 -> 0003: the swap back (CHF goes with it)
    assert alembic_versions(db_url) == ["0003"] and enum_labels(db_url) == OLD + ["BTC"]
    assert snapshot(db_url) == before and partial_index(db_url) == [(PARTIAL_INDEX,)]
    assert currency_columns(db_url)[1][3] == "'USD'::dealcurrency"


def test_an_autocommit_block_commits_the_revisions_before_it(db_url, chain):
    """Section 7's release: a hand-added CHF makes 0006's ADD VALUE fail after its
    block committed 0005; alembic_version says 0005; IF NOT EXISTS lets it through."""
    ws = chain("lab04")
    flask_in(ws, "db", "upgrade", "0004", check=True)
    chf = revision_file(ws, "0006")
    safe = chf.read_text()
    assert "ADD VALUE IF NOT EXISTS 'CHF'" in safe
    chf.write_text(safe.replace("ADD VALUE IF NOT EXISTS 'CHF'", "ADD VALUE 'CHF'"))
    rows(db_url, "ALTER TYPE dealcurrency ADD VALUE 'CHF'")  # the on-call engineer's hotfix

    line = failure(ws, "db", "upgrade")
    assert 'DuplicateObject: enum label "CHF" already exists' in line
    assert "0005 was committed before the failure (autocommit_block); the database is now at 0005" in line
    assert alembic_versions(db_url) == ["0005"]
    assert enum_labels(db_url) == OLD + ["XBT", "JPY", "CHF"]  # 0005's rename is in
    assert "the database is still at 0005" in failure(ws, "db", "upgrade")  # a re-run: the same

    chf.write_text(safe)
    flask_in(ws, "db", "upgrade", check=True)
    assert alembic_versions(db_url) == ["0007"] and enum_labels(db_url) == HEAD


def test_the_generated_downgrade_of_a_new_label_forgets_the_partial_index(db_url, chain):
    """Exercise 2's fault: alembic-postgresql-enum 1.11 renders an added label's
    downgrade as sync_enum_values without indexes_to_recreate; with the partial
    index of 0003 in place that downgrade fails (the lab's fix: tests above)."""
    ws = chain("lab04")
    revision_file(ws, "0007").unlink()
    flask_in(ws, "db", "upgrade", check=True)
    flask_in(ws, "db", "migrate", "-m", "deal currency sgd", "--rev-id", "0007", check=True)
    generated = revision_file(ws, "0007").read_text()
    assert "op.add_enum_value(" in generated and "op.sync_enum_values(" in generated
    assert "indexes_to_recreate" not in generated
    flask_in(ws, "db", "upgrade", check=True)
    line = failure(ws, "db", "downgrade")
    assert "DependentObjectsStillExist: cannot drop operator =(dealcurrency,dealcurrency_old)" in line
    assert "Nothing was undone; the database is still at 0007" in line
    assert partial_index(db_url) == [(PARTIAL_INDEX,)] and enum_labels(db_url) == HEAD


def test_observatory_counts_rewrites_and_who_waits(schema, db_url):
    """Section 8 and Exercise 3: the swap rewrites the table twice, renaming the
    old type away once, ADD VALUE and RENAME VALUE not at all; the first two make
    a reader wait behind ACCESS EXCLUSIVE, the others let it through."""
    rows(db_url, "CREATE SCHEMA observatory;"
                 "CREATE TYPE observatory.dealcurrency AS ENUM ('USD', 'EUR', 'AED', 'GBP');"
                 "CREATE TABLE observatory.deals AS SELECT i AS id,"
                 " ((ARRAY['USD', 'EUR', 'AED', 'GBP'])[1 + i % 4])::observatory.dealcurrency"
                 " AS currency FROM generate_series(1, 1000) AS i")
    o = "observatory."

    def measure(*statements):
        return observatory.measure(db_url, "test", list(statements))

    swap = measure(*scenarios.swap_through_temporary_type(OLD + ["BTC"], schema=o))
    rename = measure(*scenarios.swap_renaming_the_old_type(OLD + ["BTC", "JPY"], schema=o))
    add_value = measure(f"ALTER TYPE {o}dealcurrency ADD VALUE IF NOT EXISTS 'CHF'")
    rename_value = measure(f"ALTER TYPE {o}dealcurrency RENAME VALUE 'GBP' TO 'GBX'")

    assert (swap.rewrites, rename.rewrites, add_value.rewrites, rename_value.rewrites) == (2, 1, 0, 0)
    for blocking in (swap, rename):
        assert blocking.reader_waited
        assert ("migration", "AccessExclusiveLock", True) in blocking.locks
    for cheap in (add_value, rename_value):
        assert not cheap.reader_waited and cheap.locks == []
    assert enum_labels(db_url, schema="observatory") == ["USD", "EUR", "AED", "GBX", "BTC", "JPY", "CHF"]
    assert rows(db_url, "SELECT count(*) FROM observatory.deals") == [(1000,)]


def test_a_new_label_is_unusable_until_committed(schema, db_url):
    """Section 7: ADD VALUE inside a transaction is allowed, using the label in
    that same transaction is not; committed first (autocommit), it works."""
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    rows(db_url, "INSERT INTO contacts (id, name, email) VALUES (1, 'A', 'a@example.com');"
                 "INSERT INTO deals (id, contact_id, title, amount, currency) VALUES (1, 1, 'd', 1, 'USD')")
    with pytest.raises(sa.exc.DBAPIError, match="unsafe use of new value") as failure:
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TYPE dealcurrency ADD VALUE IF NOT EXISTS 'JPY'"))
            conn.execute(sa.text("UPDATE deals SET currency = 'JPY' WHERE id = 1"))
    assert type(failure.value.orig).__name__ == "UnsafeNewEnumValueUsage"
    assert enum_labels(db_url) == OLD  # rolled back with the transaction
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("ALTER TYPE dealcurrency ADD VALUE IF NOT EXISTS 'JPY'"))
        conn.execute(sa.text("ALTER TYPE dealcurrency ADD VALUE IF NOT EXISTS 'JPY'"))  # twice: no error
        conn.execute(sa.text("UPDATE deals SET currency = 'JPY' WHERE id = 1"))
    assert enum_labels(db_url) == OLD + ["JPY"]
    assert rows(db_url, "SELECT currency::text FROM deals") == [("JPY",)]
