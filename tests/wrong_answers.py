"""Plausible wrong answers to the labs' exercises: the mistakes a learner makes,
not only the empty answer. tests/test_wrong_answers.py splices each one into
its lab's solved notebook, just before the exercise's solution, runs the
self-check on it (which must give a hint containing `hint`), then puts the
lab's database and workspace back as they were and lets the solution run.

    Wrong(1, answer="...code a learner might write...", hint="...part of the hint...")

`answer` is a cell's source (IPython: `!` lines and `lab01.edit(...)` work);
it may fail, as wrong answers do. A lab's setup variable (`lab01`) is in scope.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Wrong:
    exercise: int  # the N of "Exercise N"
    answer: str    # the wrong answer: a cell's source
    hint: str      # a piece of the hint its self-check must print


WRONG = {
    "lab01": [
        # Exercise 1: "fixed" by deleting the type's drop: the downgrade works, the type leaks
        Wrong(1, '''
lab01.edit("migrations/versions/0003_add_contact_source.py", """
    contactsource.drop(op.get_bind())
    op.drop_column('contacts', 'source')
""", """
    op.drop_column('contacts', 'source')
""")
!flask db downgrade
!flask db upgrade
''', hint="must still drop the contactsource type"),
        # Exercise 2: the model changed and the revision written, but never applied
        Wrong(2, '''
lab01.edit("models.py", """
    source = db.Column(db.Enum(ContactSource, name="contactsource"))
""", """
    source = db.Column(db.Enum(ContactSource, name="contactsource"))
    phone = db.Column(db.String(30))
""")
!flask db migrate -m "add contact phone" --rev-id 0004
''', hint="written but not applied"),
        # Exercise 3: autogenerate's revision as it comes: it never creates the type
        Wrong(3, '''
lab01.edit("models.py", """
class ContactEventStatus(enum.Enum):
""", """
class EventChannel(enum.Enum):
    EMAIL = 0
    PHONE = 1
    MEETING = 2


class ContactEventStatus(enum.Enum):
""")
lab01.edit("models.py", """
    status = db.Column(db.Enum(ContactEventStatus, name="contacteventstatus"), nullable=False)
""", """
    status = db.Column(db.Enum(ContactEventStatus, name="contacteventstatus"), nullable=False)
    channel = db.Column(db.Enum(EventChannel, name="eventchannel"))
""")
!flask db migrate -m "add event channel" --rev-id 0005
!flask db upgrade
''', hint="does not create the eventchannel type"),
    ],
    "lab07": [
        # Exercise 1: the generated revision as it is, run under traffic: a plain CREATE INDEX
        Wrong(1, '''
with traffic.Load(v2, mix=traffic.sales("BTC")) as load:
    load.wait(0.3)
    !flask trace upgrade --no-times --save traces/0004.json
''', hint="the build took SHARE on deals"),
        # Exercise 1: built concurrently, but lock_timeout left at 5 s for the rest of the session
        Wrong(1, '''
lab07.edit(index_file, """
    with op.batch_alter_table('deals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deals_contact_id'), ['contact_id'], unique=False)
""", """
    with op.get_context().autocommit_block():
        op.execute("SET lock_timeout = '5s'")
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_deals_contact_id")
        op.create_index('ix_deals_contact_id', 'deals', ['contact_id'], unique=False,
                        postgresql_concurrently=True)
""")
!flask trace upgrade --no-times --save traces/0004.json
''', hint="put env.py's lock_timeout back"),
        # Exercise 2: each statement on its own, but the fill is one UPDATE of every row
        Wrong(2, '''
!flask db downgrade
lab07.edit(note_file, """
def upgrade():
    op.execute("ALTER TABLE deals ALTER COLUMN note SET DEFAULT ''")
""", """
def upgrade():
  with op.get_context().autocommit_block():
    op.execute("ALTER TABLE deals ALTER COLUMN note SET DEFAULT ''")
""")
!flask trace upgrade --no-times --save traces/0005.json
''', hint="fill the notes in batches of ids"),
        # Exercise 3: v3 beside v2 while SGD is sold: v2 cannot read SGD
        Wrong(3, '''
lab07.edit("models.py", """
    BTC = 4
""", """
    BTC = 4
    SGD = 5
""")
Path("migrations/versions/0006_deal_currency_sgd.py").write_text(
    Path("migrations/versions/0002_deal_currency_btc.py").read_text()
    .replace("btc", "sgd").replace("'BTC'", "'SGD'").replace("BTC stays", "SGD stays")
    .replace('"0002"', '"0006"').replace('"0001"', '"0005"')
    .replace("Revision ID: 0002", "Revision ID: 0006").replace("Revises: 0001", "Revises: 0005"))
with traffic.Load(v2, mix=traffic.sales("GBP")) as load:
    load.wait(0.3)
    !flask db upgrade
    v3 = appserver.deploy(lab07, "v3")
    load.route(v2, v3, mix=traffic.sales("SGD"))
    load.wait(1)
sgd_run = load.report
''', hint="a request failed"),
    ],
}
