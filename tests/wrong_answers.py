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
    "lab08": [
        # Exercise 1: v2's code calls it `name`, so the learner sends `name`: the API's
        # field is still `title`, v2 answers 400, and no deal comes from v2
        Wrong(1, '''
deal = {"contact_id": 1, "amount": "10.00", "currency": "EUR"}
v1.post("/api/deals", {**deal, "title": "From v1"})
v2.post("/api/deals", {**deal, "name": "From v2"})
''', hint="create a deal titled 'From v2' through v2"),
        # Exercise 2: the contract again, v1 still in the balancer and serving
        Wrong(2, '''
with traffic.Load(v1, v2, mix=traffic.sales("USD")) as load:
    with load.mark("contract"):
        !flask db upgrade
    load.wait(0.5)
contract_run = load.report
''', hint="stop v1 before the contract"),
        # Exercise 3: the attribute renamed with its column, and autogenerate's revision
        # written: it would drop contact_events.title and add an empty subject
        Wrong(3, '''
lab08.edit("models.py", """
    title = db.Column(db.String(200), nullable=False)
    happened_at = db.Column(db.DateTime, nullable=False)
""", """
    subject = db.Column(db.String(200), nullable=False)
    happened_at = db.Column(db.DateTime, nullable=False)
""")
!flask db migrate -m "event subject" --rev-id 0005
''', hint="keep the column's name"),
    ],
}
