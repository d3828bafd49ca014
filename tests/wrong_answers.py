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
}
