"""Lab 11's start: a production database that never had migrations.

    brownfield.build(lab)   # after the lab's database and workspace are fresh

Made the way it was made in 2019: `db.create_all()` from the workspace's
models.py (starter/legacy_models.py), in a process of its own as a deploy
script would; then the rows production gathered since, and the index someone
added by hand in psql one night when the deals page was slow. The server
named every constraint (contacts_pkey, contacts_email_key, ...); nothing
wrote an alembic_version table.
"""
import os
import subprocess
import sys

from labapp.errors import LabError

# what the 2019 deploy script ran, in the workspace
CREATE_ALL = "from app import app\nfrom labapp import db\nwith app.app_context():\n    db.create_all()\n"

ROWS = (
    "INSERT INTO contacts (name, email) VALUES"
    " ('Ada Lovelace', 'ada@example.com'), ('Grace Hopper', 'grace@example.com'),"
    " ('Alan Turing', 'alan@example.com')",
    "INSERT INTO deals (contact_id, title, amount, currency) VALUES"
    " (1, 'Analytical engine', 1200.00, 'GBP'), (2, 'Compiler', 800.00, DEFAULT),"
    " (2, 'Debugging', 150.00, DEFAULT), (3, 'Bombe', 5000.00, 'GBP')",
    # by hand, in psql, one night when the deals page was slow
    "CREATE INDEX deals_contact_id_idx ON deals (contact_id)",
)


def build(lab):
    """Make `lab`'s (fresh) database the production of 2019: tables, rows, a hand-made index."""
    env = {**os.environ, "LABAPP_DATABASE": lab.database, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("FLASK_APP", None)
    made = subprocess.run([sys.executable, "-c", CREATE_ALL], cwd=lab.workspace, env=env,
                          capture_output=True, text=True)
    if made.returncode != 0:
        last = (made.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise LabError(f"lab {lab.name}: db.create_all() failed: {last}")
    for statement in ROWS:
        lab.sql(statement)
