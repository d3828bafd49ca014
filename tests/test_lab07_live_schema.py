"""Lab 07's claims about locks and transactions, on half a million rows of the
real server, with lab 07's own revisions (tests/chains/lab07.patch):

* its NOT NULL revision (0005, each statement in autocommit, the fill in keyset
  batches) lets another session read and write `deals` throughout, with a
  `lock_timeout` of 200 ms: no read or write gives up; the same six statements
  in the revision's one transaction (the diagnose exercise's starting point)
  make that session's reads and writes time out;
* a `SET lock_timeout` in an `autocommit_block` lasts for the session: without
  the line that puts env.py's value back, a later revision of the same upgrade
  runs with 5 s.
"""
import re
import threading
import time

import nbformat
import pytest
import sqlalchemy as sa

from helpers import ROOT, SAMPLE, flask_in, postgres_only, revision_source
from labapp.runtime import labs
from labapp.server import database

pytestmark = [postgres_only,
              pytest.mark.filterwarnings("ignore:'get_engine' is deprecated:DeprecationWarning")]

ROWS = 500_000
NOTE = "migrations/versions/0005_deal_note_required.py"
INDEX = "migrations/versions/0004_deals_contact_index.py"


def written_by_the_lab(path):
    """What lab 07's solved notebook writes to `path` in a `%%writefile` cell: for
    0005, the colleague's revision of the diagnose exercise (the right statements,
    in one transaction)."""
    lab, _ = labs.get("lab07")
    notebook = nbformat.read(ROOT / "notebooks" / "solutions" / lab.notebook, as_version=4)
    [source] = [cell.source for cell in notebook.cells
                if cell.cell_type == "code" and cell.source.startswith(f"%%writefile {path}\n")]
    return source.partition("\n")[2]


class Prober(threading.Thread):
    """Another session of the app: every 50 ms it reads one deal and writes one, each
    giving up after 200 ms of waiting for a lock. Counts how many gave up."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool,
                                       connect_args={"options": "-c lock_timeout=200ms"})
        self.stop, self.tries, self.timeouts = threading.Event(), 0, 0

    def run(self):
        with self.engine.connect() as conn:
            while not self.stop.wait(0.05):
                for sql in ("SELECT title FROM deals WHERE id = 1",
                            "INSERT INTO deals (contact_id, title, amount, currency) VALUES (1, 'probe', 1, 'USD')"):
                    self.tries += 1
                    try:
                        conn.exec_driver_sql(sql)
                        conn.commit()
                    except sa.exc.OperationalError as exc:
                        conn.rollback()
                        if getattr(exc.orig, "pgcode", None) != "55P03":  # lock_not_available
                            raise
                        self.timeouts += 1

    def finish(self):
        self.stop.set()
        self.join(30)
        self.engine.dispose()


@pytest.fixture
def lab07_at_0004(chain, db_url):
    """Lab 07's end state, its database at 0004 with the sample rows and half a
    million deals without a note."""
    folder = chain("lab07")
    flask_in(folder, "db", "upgrade", "0004", check=True, timeout=300)
    flask_in(folder, "loaddata", str(SAMPLE), check=True, timeout=300)
    engine = database.quick_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO deals (contact_id, title, amount, currency) "
                             "SELECT 1 + i % 6, 'Deal ' || i, i, 'USD' FROM generate_series(1, :n) i"),
                     {"n": ROWS})
    engine.dispose()
    return folder


@pytest.mark.parametrize("version, gives_up", [("lab 07's 0005", False), ("one transaction", True)])
def test_the_not_null_recipe_lets_the_app_read_and_write_throughout(lab07_at_0004, db_url,
                                                                      version, gives_up):
    if version == "one transaction":
        (lab07_at_0004 / NOTE).write_text(written_by_the_lab(NOTE))
    prober = Prober(db_url)
    prober.start()
    time.sleep(0.3)
    try:
        flask_in(lab07_at_0004, "db", "upgrade", "0005", check=True, timeout=300)
    finally:
        time.sleep(0.3)
        prober.finish()
    assert prober.tries > 10
    assert (prober.timeouts > 0) == gives_up, (prober.timeouts, prober.tries)
    engine = database.quick_engine(db_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT is_nullable FROM information_schema.columns WHERE "
                                    "table_name = 'deals' AND column_name = 'note'").scalar() == "NO"
    engine.dispose()


LEAK_TEST = revision_source("0007", "0006", """\
    op.execute("CREATE TABLE seen AS SELECT current_setting('lock_timeout') AS lock_timeout")
""", '    op.execute("DROP TABLE seen")\n', doc="what lock_timeout a later revision runs with")


@pytest.mark.parametrize("put_back, seen", [(True, "100ms"), (False, "5s")])
def test_a_set_in_an_autocommit_block_lasts_for_the_rest_of_the_upgrade(chain, db_url, put_back, seen):
    folder = chain("lab07")
    if not put_back:  # lab 07's exercise 1 without its last line
        source = (folder / INDEX).read_text()
        (folder / INDEX).write_text(re.sub(r"\n\s*op\.execute\(f\"SET lock_timeout = '\{timeout\}'\"\)", "", source))
        assert "{timeout}" not in (folder / INDEX).read_text()
    (folder / "migrations" / "versions" / "0007_seen.py").write_text(LEAK_TEST)
    flask_in(folder, "db", "upgrade", check=True, timeout=300)  # 0001 to 0007 in one upgrade
    engine = database.quick_engine(db_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT lock_timeout FROM seen").scalar() == seen
    engine.dispose()
