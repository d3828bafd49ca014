"""Lab 04 (enum swap, DealCurrency gains BTC): its claims, on the real server.

The chain is the lab's end state, tests/chains/lab04.patch (0002 currency
defaults, 0003 the temporary-type swap adding BTC with a downgrade that
refuses rows holding BTC, 0004 JPY by ADD VALUE in an autocommit block, 0005
BTC renamed to XBT). Each test builds it into a fresh workspace and drives it
with `flask db ...` as the notebook does, on a fresh database with the sample
data in it.
"""
import pytest
import sqlalchemy as sa

from conftest import ROOT, postgres_only, rows, run_flask
from labapp import labs, workspace

OLD = ["USD", "EUR", "AED", "GBP"]

pytestmark = [postgres_only,
              pytest.mark.filterwarnings("ignore:'get_engine' is deprecated:DeprecationWarning")]


def flask(folder, *args):
    """`flask ARGS` in the workspace, as a learner runs it (the workspace's app.py)."""
    return run_flask(*args, cwd=folder, app=None)


def ok(folder, *args):
    proc = flask(folder, *args)
    assert proc.returncode == 0, proc.output
    return proc.output


def labels(url, type_name="dealcurrency"):
    return [label for (label,) in rows(
        url, "SELECT e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid"
             " WHERE t.typname = :t ORDER BY e.enumsortorder", t=type_name)]


def version(url):
    return rows(url, "SELECT version_num FROM alembic_version")


def snapshot(url):
    """Every row of contacts and deals, currencies as text: equal means no row changed."""
    return (rows(url, "SELECT id, name, email, preferred_currency::text FROM contacts ORDER BY id"),
            rows(url, "SELECT id, contact_id, title, amount, currency::text FROM deals ORDER BY id"))


def filenode(url, table):
    return rows(url, "SELECT pg_relation_filenode(:t)", t=table)[0][0]


def currency_columns(url):
    return rows(url, "SELECT table_name, column_name, udt_name, column_default"
                     " FROM information_schema.columns WHERE table_schema = current_schema()"
                     " AND udt_name LIKE '%dealcurrency' ORDER BY 1, 2")


def test_plain_autogenerate_misses_btc_and_the_database_rejects_it(db_url, tmp_path):
    """Section 2: BTC in the model, yet `flask db check` passes; the database
    refuses a BTC deal; with alembic_postgresql_enum imported, check fails."""
    models = (ROOT / "labapp" / "models.py").read_text()
    assert "    GBP = 3\n" in models
    ws = workspace.build(tmp_path / "ws", labs.get("lab04")[0])
    (ws / "models.py").write_text(models.replace("    GBP = 3\n", "    GBP = 3\n    BTC = 4\n"))
    ok(ws, "db", "upgrade")
    assert "No new upgrade operations detected" in ok(ws, "db", "check")
    with pytest.raises(sa.exc.DataError, match='invalid input value for enum dealcurrency: "BTC"'):
        rows(db_url, "INSERT INTO contacts (id, name, email) VALUES (1, 'A', 'a@example.com');"
                     "INSERT INTO deals (contact_id, title, amount, currency)"
                     " VALUES (1, 'Bitcoin pilot', 0.75, 'BTC')")
    env_py = ws / "migrations" / "env.py"
    env_py.write_text(env_py.read_text().replace(
        "from alembic import context\n", "from alembic import context\nimport alembic_postgresql_enum\n"))
    check = flask(ws, "db", "check")
    assert check.returncode == 1 and "add_enum_value" in check.output, check.output


def test_lab04_chain_keeps_every_row_up_and_down(db_url, chain):
    """The lab's journey with the sample data in the tables: the swap (0003)
    keeps every row and adds BTC; 0004 and 0005 rewrite nothing; each
    downgrade works, and 0003's refuses while a row holds BTC."""
    ws = chain("lab04")
    ok(ws, "db", "upgrade", "0002")
    ok(ws, "loaddata")
    rows(db_url, "UPDATE contacts SET preferred_currency = 'GBP' WHERE id IN (1, 3)")
    before = snapshot(db_url)
    assert len(before[0]) == 6 and len(before[1]) == 10
    deals_file = filenode(db_url, "deals")

    # 0003: the temporary-type swap
    ok(ws, "db", "upgrade", "0003")
    assert labels(db_url) == OLD + ["BTC"]
    assert labels(db_url, "_dealcurrency") == []
    assert snapshot(db_url) == before, "the swap changed a row"
    assert currency_columns(db_url) == [
        ("contacts", "preferred_currency", "dealcurrency", None),
        ("deals", "currency", "dealcurrency", "'USD'::dealcurrency"),
    ]
    assert filenode(db_url, "deals") != deals_file, "the swap rewrites the table"
    [(btc_deal,)] = rows(db_url, "INSERT INTO deals (contact_id, title, amount, currency)"
                                 " VALUES (2, 'Bitcoin pilot', 0.75, 'BTC') RETURNING id")
    assert rows(db_url, "INSERT INTO deals (contact_id, title, amount) VALUES (1, 'x', 1)"
                        " RETURNING currency::text") == [("USD",)]  # the default survived
    rows(db_url, "DELETE FROM deals WHERE title = 'x'")
    with_btc = snapshot(db_url)

    # 0004 (ADD VALUE in an autocommit block) and 0005 (RENAME VALUE), in ONE upgrade
    deals_file = filenode(db_url, "deals")
    ok(ws, "db", "upgrade")
    assert version(db_url) == [("0005",)]
    assert labels(db_url) == OLD + ["XBT", "JPY"]
    assert rows(db_url, "SELECT currency::text FROM deals WHERE id = :id", id=btc_deal) == [("XBT",)]
    assert filenode(db_url, "deals") == deals_file, "ADD VALUE / RENAME VALUE rewrote deals"
    assert "No new upgrade operations detected" in ok(ws, "db", "check")

    # down, one revision at a time
    ok(ws, "db", "downgrade")  # 0005 -> 0004: XBT is BTC again
    assert labels(db_url) == OLD + ["BTC", "JPY"] and snapshot(db_url) == with_btc
    ok(ws, "db", "downgrade")  # 0004 -> 0003: the generated sync_enum_values drops JPY
    assert labels(db_url) == OLD + ["BTC"] and snapshot(db_url) == with_btc
    assert currency_columns(db_url)[1][3] == "'USD'::dealcurrency"

    refused = flask(ws, "db", "downgrade")  # 0003 -> 0002 with a BTC deal: refused
    assert refused.returncode == 1
    assert "1 row(s) of deals.currency hold a currency that revision 0002 does not know" in refused.output
    assert version(db_url) == [("0003",)] and labels(db_url) == OLD + ["BTC"]
    assert snapshot(db_url) == with_btc, "a refused downgrade changed a row"

    rows(db_url, "DELETE FROM deals WHERE id = :id", id=btc_deal)
    rows(db_url, "UPDATE contacts SET preferred_currency = 'BTC' WHERE id = 2")
    refused = flask(ws, "db", "downgrade")  # the other column counts too
    assert refused.returncode == 1 and "contacts.preferred_currency" in refused.output, refused.output
    rows(db_url, "UPDATE contacts SET preferred_currency = NULL WHERE id = 2")

    ok(ws, "db", "downgrade")  # 0003 -> 0002: the swap back
    assert version(db_url) == [("0002",)]
    assert labels(db_url) == OLD and labels(db_url, "_dealcurrency") == []
    assert snapshot(db_url) == before, "the downgrade changed a row"
    assert currency_columns(db_url)[1][3] == "'USD'::dealcurrency"

    ok(ws, "db", "downgrade")  # 0002 -> 0001
    assert [c for _, c, _, _ in currency_columns(db_url)] == ["currency"]
    assert currency_columns(db_url)[0][3] is None
    assert len(rows(db_url, "SELECT id FROM deals")) == 10

    ok(ws, "db", "downgrade")  # 0001 -> base: tables and types gone
    assert labels(db_url) == [] and version(db_url) == []
    ok(ws, "db", "upgrade")
    assert labels(db_url) == OLD + ["XBT", "JPY"]


def test_a_new_label_is_unusable_until_committed(schema, db_url):
    """Section 6: ADD VALUE inside a transaction is allowed, using the label in
    that same transaction is not; committed first (autocommit), it works."""
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    rows(db_url, "INSERT INTO contacts (id, name, email) VALUES (1, 'A', 'a@example.com');"
                 "INSERT INTO deals (id, contact_id, title, amount, currency) VALUES (1, 1, 'd', 1, 'USD')")
    with pytest.raises(sa.exc.DBAPIError, match="unsafe use of new value") as failure:
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TYPE dealcurrency ADD VALUE IF NOT EXISTS 'JPY'"))
            conn.execute(sa.text("UPDATE deals SET currency = 'JPY' WHERE id = 1"))
    assert type(failure.value.orig).__name__ == "UnsafeNewEnumValueUsage"
    assert labels(db_url) == OLD  # rolled back with the transaction
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("ALTER TYPE dealcurrency ADD VALUE IF NOT EXISTS 'JPY'"))
        conn.execute(sa.text("ALTER TYPE dealcurrency ADD VALUE IF NOT EXISTS 'JPY'"))  # twice: no error
        conn.execute(sa.text("UPDATE deals SET currency = 'JPY' WHERE id = 1"))
    assert labels(db_url) == OLD + ["JPY"]
    assert rows(db_url, "SELECT currency::text FROM deals") == [("JPY",)]
