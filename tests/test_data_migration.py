"""Lab 02's data migration (revision 0004, split contacts.full_name) keeps every
name through upgrade and downgrade, on names the sample DATA does not have.

It runs lab 02's chain (tests/chains/lab02.patch) with `flask db` on a fresh database.
"""

from conftest import postgres_only, rows, run_flask

pytestmark = postgres_only

NAMES = {
    1: ("Ada Lovelace", "Ada", "Lovelace"),
    2: ("Plato", "Plato", ""),                      # one word: no last name
    3: ("Edsger W. Dijkstra", "Edsger", "W. Dijkstra"),  # the rest is the last name
    4: ("Gabriel García Márquez", "Gabriel", "García Márquez"),
}


def test_split_names_round_trip(db_url, chain):
    lab02 = chain("lab02")

    def flask_db(*args):
        proc = run_flask("db", *args, cwd=lab02, app=None)
        assert proc.returncode == 0, proc.output
        return proc.output

    flask_db("upgrade", "0003")
    for id_, (full, _, _) in NAMES.items():
        rows(db_url, "INSERT INTO contacts (id, full_name, email) VALUES (:id, :n, :e)",
             id=id_, n=full, e=f"c{id_}@example.com")

    assert "Running upgrade 0003 -> 0004" in flask_db("upgrade", "0004")
    split = rows(db_url, "SELECT id, first_name, last_name FROM contacts ORDER BY id")
    assert split == [(i, first, last) for i, (_, first, last) in NAMES.items()]
    nullable = rows(db_url, "SELECT column_name, is_nullable FROM information_schema.columns"
                            " WHERE table_name = 'contacts' AND column_name LIKE '%_name'"
                            " ORDER BY column_name")
    assert nullable == [("first_name", "NO"), ("last_name", "NO")]

    assert "Running downgrade 0004 -> 0003" in flask_db("downgrade", "0003")
    joined = rows(db_url, "SELECT id, full_name FROM contacts ORDER BY id")
    assert joined == [(i, full) for i, (full, _, _) in NAMES.items()]

    flask_db("upgrade", "0004")
    assert rows(db_url, "SELECT id, first_name, last_name FROM contacts ORDER BY id") == split
