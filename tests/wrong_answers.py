"""Plausible wrong answers to the labs' exercises: the mistakes a learner makes,
not only the empty answer. tests/test_wrong_answers.py splices each one into
its lab's solved notebook, just before the exercise's solution, runs the
self-check on it (which must give a hint containing `hint`), then puts the
lab's database and workspace back as they were and lets the solution run.

    Wrong(1, answer="...code a learner might write...", hint="...part of the hint...")

`answer` is a cell's source (IPython: `!` lines and `lab01.edit(...)` work);
it may fail, as wrong answers do. A lab's setup variable (`lab01`) is in scope.
`after` runs once the lab is put back, for what the snapshot does not hold
(an app server the answer stopped).

RIGHT holds the other way round: answers that differ from the solution and are
right all the same (a check must not ask for the solution's spelling). Each
goes in the same way, and its self-check must print done.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Wrong:
    exercise: int  # the N of "Exercise N"
    answer: str    # the wrong answer: a cell's source
    hint: str      # a piece of the hint its self-check must print
    after: str = ""  # a cell run after the restore (what the snapshot cannot put back)


@dataclass(frozen=True)
class Right:
    exercise: int
    answer: str    # a right answer the solution does not spell so: its check must pass
    after: str = ""
    hint = None    # no hint: done


# lab 06: what its revisions hold when an exercise starts, and the review a learner runs
# on a revision (squawk on its SQL) before applying it
DANA_SWAP_UPGRADE = """\
    # swap dealcurrency for a new type that has BTC
    op.execute("ALTER TYPE dealcurrency RENAME TO _dealcurrency")
    op.execute("CREATE TYPE dealcurrency AS ENUM ('USD', 'EUR', 'AED', 'GBP', 'BTC')")
    op.execute("ALTER TABLE deals ALTER COLUMN currency TYPE dealcurrency"
               " USING currency::text::dealcurrency")
    op.execute("DROP TYPE _dealcurrency")
"""
DANA_SWAP = DANA_SWAP_UPGRADE + """

def downgrade():
    op.execute("ALTER TYPE dealcurrency RENAME TO _dealcurrency")
    op.execute("CREATE TYPE dealcurrency AS ENUM ('USD', 'EUR', 'AED', 'GBP')")
    op.execute("ALTER TABLE deals ALTER COLUMN currency TYPE dealcurrency"
               " USING currency::text::dealcurrency")
    op.execute("DROP TYPE _dealcurrency")
"""
SQUAWK_THEN_UPGRADE = """\
!flask db upgrade 0004:0005 --sql > review.sql
!squawk --reporter gcc review.sql && echo "squawk: no issues"
!flask db upgrade
"""
CAROL_INDEX = """\
    op.drop_index('ix_contact_events_happened_at', table_name='contact_events',
                  postgresql_concurrently=True, if_exists=True)
    op.create_index('ix_contact_events_happened_at', 'contact_events', ['happened_at'],
                    postgresql_concurrently=True, if_not_exists=True)
"""
CAROL_DROP = """\
def downgrade():
    op.drop_index('ix_contact_events_happened_at', table_name='contact_events',
                  postgresql_concurrently=True, if_exists=True)
"""
FRANK_COLUMN = '''\
lab06.edit("models.py", """
    phone = db.Column(db.String(30))
""", """
    phone = db.Column(db.String(30))
    company = db.Column(db.String(120))
""")
'''

# lab 05, Exercise 2: the model that reuses contacteventstatus twice, and its revision
EVENT_STATUS_CHANGES = '''\
lab05.edit("models.py", """
    # the PostgreSQL type `dealcurrency`, shared with Deal.currency
    currency = db.Column(db.Enum(DealCurrency, name="dealcurrency"), nullable=False)
""", """
    # the PostgreSQL type `dealcurrency`, shared with Deal.currency
    currency = db.Column(db.Enum(DealCurrency, name="dealcurrency"), nullable=False)


class EventStatusChange(db.Model):
    __tablename__ = "event_status_changes"
    id = db.Column(db.Integer, primary_key=True)
    event_id = db.Column(db.Integer, db.ForeignKey("contact_events.id"), nullable=False)
    changed_at = db.Column(db.DateTime, nullable=False)
    old_status = db.Column(db.Enum(ContactEventStatus, name="contacteventstatus"), nullable=False)
    new_status = db.Column(db.Enum(ContactEventStatus, name="contacteventstatus"), nullable=False)
""")
!flask db migrate -m "add event status changes" --rev-id 0004'''


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
    "lab02": [
        # Exercise 1: autogenerate's add + drop kept, its NOT NULL error "fixed" with a
        # server_default: the upgrade runs, and every event's time becomes now()
        Wrong(1, '''
lab02.edit("models.py", """
    happened_at = db.Column(db.DateTime, nullable=False)
""", """
    occurred_at = db.Column(db.DateTime, nullable=False)
""")
!flask db migrate -m "rename event happened_at" --rev-id 0005
lab02.edit("migrations/versions/0005_rename_event_happened_at.py",
           "sa.Column('occurred_at', sa.DateTime(), nullable=False)",
           "sa.Column('occurred_at', sa.DateTime(), nullable=False, server_default=sa.func.now())")
!flask db upgrade
''', hint="occurred_at lost the times"),
        # Exercise 1: the rename written in upgrade() only; downgrade() still adds + drops
        Wrong(1, '''
lab02.edit("models.py", """
    happened_at = db.Column(db.DateTime, nullable=False)
""", """
    occurred_at = db.Column(db.DateTime, nullable=False)
""")
!flask db migrate -m "rename event happened_at" --rev-id 0005
lab02.edit("migrations/versions/0005_rename_event_happened_at.py", """
        batch_op.add_column(sa.Column('occurred_at', sa.DateTime(), nullable=False))
        batch_op.drop_column('happened_at')
""", """
        batch_op.alter_column('happened_at', new_column_name='occurred_at')
""")
!flask db upgrade
''', hint="make downgrade() in 0005 rename `occurred_at` back"),
        # Exercise 2: the column added, the backfill forgotten
        Wrong(2, '''
lab02.edit("models.py", """
    active = db.Column(db.Boolean, nullable=False, server_default=db.text("true"))
""", """
    active = db.Column(db.Boolean, nullable=False, server_default=db.text("true"))
    last_event_at = db.Column(db.DateTime)
""")
!flask db migrate -m "add contact last_event_at" --rev-id 0006
!flask db upgrade
''', hint="contacts have no or a wrong last_event_at"),
        # Exercise 2: a backfill whose subquery forgot its contact: the latest event of all
        Wrong(2, '''
lab02.edit("models.py", """
    active = db.Column(db.Boolean, nullable=False, server_default=db.text("true"))
""", """
    active = db.Column(db.Boolean, nullable=False, server_default=db.text("true"))
    last_event_at = db.Column(db.DateTime)
""")
!flask db migrate -m "add contact last_event_at" --rev-id 0006
lab02.edit("migrations/versions/0006_add_contact_last_event_at.py", """
        batch_op.add_column(sa.Column('last_event_at', sa.DateTime(), nullable=True))

""", """
        batch_op.add_column(sa.Column('last_event_at', sa.DateTime(), nullable=True))

    op.execute("UPDATE contacts SET last_event_at = (SELECT max(occurred_at) FROM contact_events)")
""")
!flask db upgrade
''', hint="contacts have no or a wrong last_event_at"),
        # Exercise 2: the backfill typed into this database by hand, not into the revision:
        # the rows are right here, and production would get NULLs
        Wrong(2, '''
lab02.edit("models.py", """
    active = db.Column(db.Boolean, nullable=False, server_default=db.text("true"))
""", """
    active = db.Column(db.Boolean, nullable=False, server_default=db.text("true"))
    last_event_at = db.Column(db.DateTime)
""")
!flask db migrate -m "add contact last_event_at" --rev-id 0006
!flask db upgrade
lab02.sql("UPDATE contacts SET last_event_at = (SELECT max(e.occurred_at)"
          " FROM contact_events e WHERE e.contact_id = contacts.id)")
''', hint="0006's upgrade() does not backfill"),
        # Exercise 3: the duplicates deleted so that the colleague's constraint fits
        Wrong(3, '''
!flask db upgrade
lab02.sql("DELETE FROM contact_events a USING contact_events b"
          " WHERE a.title = b.title AND a.occurred_at = b.occurred_at AND a.id > b.id")
!flask db upgrade
''', hint="don't delete rows to fit a constraint"),
        # Exercise 3: the revision fixed, models.py left with the colleague's constraint
        Wrong(3, '''
revision = "migrations/versions/0007_one_event_per_title_and_time.py"
lab02.edit(revision, """
    op.create_unique_constraint('uq_contact_events_title_time', 'contact_events',
                                ['title', 'occurred_at'])
""", """
    op.create_unique_constraint('uq_contact_events_contact_title_time', 'contact_events',
                                ['contact_id', 'title', 'occurred_at'])
""")
lab02.edit(revision, """
    op.drop_constraint('uq_contact_events_title_time', 'contact_events', type_='unique')
""", """
    op.drop_constraint('uq_contact_events_contact_title_time', 'contact_events', type_='unique')
""")
!flask db upgrade
''', hint="models.py and the database differ"),
    ],
    "lab03": [
        # Exercise 1: models.py changed but not committed: the replay refuses to start
        Wrong(1, '''
lab03.edit("models.py", """
    phone = db.Column(db.String(30))
""", """
    phone = db.Column(db.String(30))
    company = db.Column(db.String(120))
""")
!rm -rf migrations
!flask replay-production -m "add contact company" --rev-id 0004
!LABAPP_DATABASE={lab03.database}_replay flask db upgrade
''', hint="commit it on master"),
        # Exercise 1: the revision tried on the lab's database (production), not on the replica
        Wrong(1, '''
lab03.edit("models.py", """
    phone = db.Column(db.String(30))
""", """
    phone = db.Column(db.String(30))
    company = db.Column(db.String(120))
""")
!git commit -q -am "contacts.company"
!rm -rf migrations
!flask replay-production -m "add contact company" --rev-id 0004
!flask db upgrade
''', hint="upgrade the replica"),
        # Exercise 2: `git commit -a` after the merge: it leaves the new, untracked 0004 out
        Wrong(2, '''
!git switch -q production
!git merge -q --no-edit master
!git commit -q -am "production: migration 0004"
!flask db upgrade
''', hint="`git add migrations` and commit"),
        # Exercise 2: committed on production, never applied
        Wrong(2, '''
!git switch -q production
!git merge -q --no-edit master
!git add migrations && git commit -q -m "production: migration 0004"
''', hint="run `flask db upgrade` on production"),
        # Exercise 3: made to fit by cutting every number to 15 characters
        Wrong(3, '''
lab03.edit("migrations/versions/0005_shorten_contact_phone.py",
           "existing_type=sa.String(length=30), existing_nullable=True)",
           "existing_type=sa.String(length=30), existing_nullable=True,"
           " postgresql_using='left(phone, 15)')")
!LABAPP_DATABASE={lab03.database}_replay flask db upgrade
''', hint="the replica's phone numbers differ from DATA/contacts.csv"),
        # Exercise 3: made to fit by taking the spaces out of the numbers first
        Wrong(3, '''
lab03.edit("migrations/versions/0005_shorten_contact_phone.py", """
def upgrade():
""", """
def upgrade():
    op.execute("UPDATE contacts SET phone = replace(phone, ' ', '')")
""")
!LABAPP_DATABASE={lab03.database}_replay flask db upgrade
''', hint="the replica's phone numbers differ from DATA/contacts.csv"),
        # Exercise 3: room for 16 in the revision only; models.py still says String(15)
        Wrong(3, '''
lab03.edit("migrations/versions/0005_shorten_contact_phone.py",
           "op.alter_column('contacts', 'phone', type_=sa.String(length=15),",
           "op.alter_column('contacts', 'phone', type_=sa.String(length=20),")
lab03.edit("migrations/versions/0005_shorten_contact_phone.py",
           "existing_type=sa.String(length=15), existing_nullable=True)",
           "existing_type=sa.String(length=20), existing_nullable=True)")
!LABAPP_DATABASE={lab03.database}_replay flask db upgrade
''', hint="models.py's phone length differs"),
        # Exercise 3: fixed in both files, then applied to the lab's database, not the replica
        Wrong(3, '''
lab03.edit("migrations/versions/0005_shorten_contact_phone.py",
           "op.alter_column('contacts', 'phone', type_=sa.String(length=15),",
           "op.alter_column('contacts', 'phone', type_=sa.String(length=20),")
lab03.edit("migrations/versions/0005_shorten_contact_phone.py",
           "existing_type=sa.String(length=15), existing_nullable=True)",
           "existing_type=sa.String(length=20), existing_nullable=True)")
lab03.edit("models.py", "phone = db.Column(db.String(15))", "phone = db.Column(db.String(20))")
!flask db upgrade
''', hint="not on the replica"),
    ],
    "lab04": [
        # Exercise 1: the generated revision applied as it is
        Wrong(1, '''
!flask db upgrade
''', hint="still calls op.add_enum_value"),
        # Exercise 1: ADD VALUE IF NOT EXISTS, but inside the upgrade's transaction
        Wrong(1, '''
lab04.edit(sgd, """
    op.add_enum_value(
        enum_schema='public',
        enum_name='dealcurrency',
        new_value='SGD',
    )
""", """
    op.execute("ALTER TYPE dealcurrency ADD VALUE IF NOT EXISTS 'SGD'")
""")
!flask db upgrade
''', hint="inside `with op.get_context().autocommit_block():`"),
        # Exercise 1: the generated op.add_enum_value moved into an autocommit_block:
        # outside the transaction now, and still without IF NOT EXISTS
        Wrong(1, '''
lab04.edit(sgd, """
    op.add_enum_value(
        enum_schema='public',
        enum_name='dealcurrency',
        new_value='SGD',
    )
""", """
    with op.get_context().autocommit_block():
        op.add_enum_value(
            enum_schema='public',
            enum_name='dealcurrency',
            new_value='SGD',
        )
""")
!flask db upgrade
''', hint="op.add_enum_value in the autocommit_block"),
        # Exercise 2: the index that blocks the swap dropped in downgrade(), never created again
        Wrong(2, '''
lab04.edit(sgd, """
    op.sync_enum_values(
""", """
    op.drop_index('ix_deals_usd_amount', table_name='deals')
    op.sync_enum_values(
""")
!flask db downgrade
!flask db upgrade
''', hint="ix_deals_usd_amount is gone"),
        # Exercise 2: indexes_to_recreate with a definition that lost the WHERE
        Wrong(2, '''
lab04.edit(sgd, """
from alembic_postgresql_enum import TableReference
""", """
from alembic_postgresql_enum import TableReference
from alembic_postgresql_enum.sql_commands.indexes import TableIndex
""")
lab04.edit(sgd, """
        enum_values_to_rename=[],
""", """
        enum_values_to_rename=[],
        indexes_to_recreate=[TableIndex(
            name='public.ix_deals_usd_amount',
            definition="CREATE INDEX ix_deals_usd_amount ON public.deals USING btree (amount)")],
""")
!flask db downgrade
!flask db upgrade
''', hint="came back without its WHERE"),
        # Exercise 2: downgrade() fixed, the round trip never run
        Wrong(2, '''
lab04.edit(sgd, """
from alembic_postgresql_enum import TableReference
""", """
from alembic_postgresql_enum import TableReference
from alembic_postgresql_enum.sql_commands.indexes import TableIndex
""")
lab04.edit(sgd, """
        enum_values_to_rename=[],
""", """
        enum_values_to_rename=[],
        indexes_to_recreate=[TableIndex(
            name='public.ix_deals_usd_amount',
            definition="CREATE INDEX ix_deals_usd_amount ON public.deals USING btree (amount)"
                       " WHERE (currency = 'USD'::dealcurrency)")],
""")
''', hint="prove the round trip"),
        # Exercise 3: the statement run with %sql: nothing measured
        Wrong(3, '''
%sql ALTER TYPE observatory.dealcurrency RENAME VALUE 'GBP' TO 'GBX'
''', hint="keep the result of observatory.observe"),
        # Exercise 3: the schema left out: it renames the label of the lab's own type
        Wrong(3, '''
rename_value = observatory.observe(lab04, "RENAME VALUE", [
    "ALTER TYPE dealcurrency RENAME VALUE 'GBP' TO 'GBX'",
])
''', hint="GBP is gone from the lab's own dealcurrency"),
        # Exercise 3: a rename measured as a swap, the way section 8 renamed the type away
        Wrong(3, '''
rename_value = observatory.observe(lab04, "RENAME VALUE", [
    "ALTER TYPE observatory.dealcurrency RENAME TO _dealcurrency",
    "CREATE TYPE observatory.dealcurrency AS ENUM ('USD', 'EUR', 'AED', 'GBX', 'BTC', 'JPY', 'CHF')",
    "ALTER TABLE observatory.deals ALTER COLUMN currency TYPE observatory.dealcurrency"
    " USING replace(currency::text, 'GBP', 'GBX')::observatory.dealcurrency",
    "DROP TYPE observatory._dealcurrency",
])
''', hint="measure only that one statement"),
    ],
    "lab05": [
        # Exercise 1: autogenerate's revision as it comes: sa.Enum creates dealcurrency again
        Wrong(1, '''
lab05.edit("models.py", """
    status = db.Column(db.Enum(ContactEventStatus, name="contacteventstatus"),
                       nullable=False)
""", """
    status = db.Column(db.Enum(ContactEventStatus, name="contacteventstatus"),
                       nullable=False)


class DealPayment(db.Model):
    __tablename__ = "deal_payments"
    id = db.Column(db.Integer, primary_key=True)
    deal_id = db.Column(db.Integer, db.ForeignKey("deals.id"), nullable=False)
    amount = db.Column(db.Numeric(12, 2), nullable=False)
    currency = db.Column(db.Enum(DealCurrency, name="dealcurrency"), nullable=False)
""")
!flask db migrate -m "add deal payments" --rev-id 0003
!flask db upgrade
''', hint="make the currency column `postgresql.ENUM(..., name='dealcurrency', create_type=False)`"),
        # Exercise 1: create_type=False put on the model, not on the revision
        Wrong(1, '''
lab05.edit("models.py", """
    status = db.Column(db.Enum(ContactEventStatus, name="contacteventstatus"),
                       nullable=False)
""", """
    status = db.Column(db.Enum(ContactEventStatus, name="contacteventstatus"),
                       nullable=False)


class DealPayment(db.Model):
    __tablename__ = "deal_payments"
    id = db.Column(db.Integer, primary_key=True)
    deal_id = db.Column(db.Integer, db.ForeignKey("deals.id"), nullable=False)
    amount = db.Column(db.Numeric(12, 2), nullable=False)
    currency = db.Column(db.Enum(DealCurrency, name="dealcurrency", create_type=False), nullable=False)
""")
!flask db migrate -m "add deal payments" --rev-id 0003
!flask db upgrade
''', hint="in 0003's upgrade(), make the currency column"),
        # Exercise 1: lab 01's habit: the downgrade drops the enum type, which deals still uses
        Wrong(1, '''
lab05.edit("models.py", """
    status = db.Column(db.Enum(ContactEventStatus, name="contacteventstatus"),
                       nullable=False)
""", """
    status = db.Column(db.Enum(ContactEventStatus, name="contacteventstatus"),
                       nullable=False)


class DealPayment(db.Model):
    __tablename__ = "deal_payments"
    id = db.Column(db.Integer, primary_key=True)
    deal_id = db.Column(db.Integer, db.ForeignKey("deals.id"), nullable=False)
    amount = db.Column(db.Numeric(12, 2), nullable=False)
    currency = db.Column(db.Enum(DealCurrency, name="dealcurrency"), nullable=False)
""")
!flask db migrate -m "add deal payments" --rev-id 0003
payments = "migrations/versions/0003_add_deal_payments.py"
lab05.edit(payments, """
import sqlalchemy as sa
""", """
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
""")
lab05.edit(payments, "sa.Enum('USD', 'EUR', 'AED', 'GBP', name='dealcurrency')",
           "postgresql.ENUM('USD', 'EUR', 'AED', 'GBP', name='dealcurrency', create_type=False)")
lab05.edit(payments, """
    op.drop_table('deal_payments')
""", """
    op.drop_table('deal_payments')
    sa.Enum(name='dealcurrency').drop(op.get_bind(), checkfirst=True)
""")
!flask db upgrade
!flask db downgrade
!flask db upgrade
''', hint="0003's downgrade() must not drop dealcurrency"),
        # Exercise 2: 0004 generated before env.py imported the package: sa.Enum twice
        Wrong(2, f'''
{EVENT_STATUS_CHANGES}
lab05.edit("migrations/env.py", """
from alembic import context
""", """
from alembic import context
import alembic_postgresql_enum  # noqa: F401
""")
!flask db upgrade
''', hint="delete the file and migrate again"),
        # Exercise 2: no import in env.py; create_type=False typed into 0004 by hand instead
        Wrong(2, f'''
from pathlib import Path

{EVENT_STATUS_CHANGES}
status_changes = Path("migrations/versions/0004_add_event_status_changes.py")
status_changes.write_text(status_changes.read_text()
    .replace("import sqlalchemy as sa\\n", "import sqlalchemy as sa\\nfrom sqlalchemy.dialects import postgresql\\n")
    .replace("sa.Enum(", "postgresql.ENUM(")
    .replace("name='contacteventstatus')", "name='contacteventstatus', create_type=False)"))
!flask db upgrade
''', hint="add `import alembic_postgresql_enum` to migrations/env.py"),
        # Exercise 3: create_type=False taken out: op.add_column still creates no type
        Wrong(3, '''
!flask db upgrade
lab05.edit("migrations/versions/0005_add_invitation_channel.py",
           "name='invitationchannel', create_type=False)", "name='invitationchannel')")
!flask db upgrade
''', hint="`flask db upgrade` fails on 0005"),
        # Exercise 3: the type created by hand in this database: 0005 passes here, not in production
        Wrong(3, '''
!flask db upgrade
%sql CREATE TYPE invitationchannel AS ENUM ('EMAIL', 'PHONE', 'LETTER')
!flask db upgrade
''', hint="not by 0005"),
        # Exercise 3: the type created in upgrade(), never dropped in downgrade()
        Wrong(3, '''
lab05.edit("migrations/versions/0005_add_invitation_channel.py", """
    op.add_column('event_invitations', sa.Column('channel', channel, nullable=True))
""", """
    channel.create(op.get_bind(), checkfirst=False)
    op.add_column('event_invitations', sa.Column('channel', channel, nullable=True))
""")
!flask db upgrade
!flask db downgrade
!flask db upgrade
''', hint="its downgrade() must drop it"),
        # Exercise 3: downgrade() drops the type before the column that uses it: it fails
        Wrong(3, '''
channel_revision = "migrations/versions/0005_add_invitation_channel.py"
lab05.edit(channel_revision, """
    op.add_column('event_invitations', sa.Column('channel', channel, nullable=True))
""", """
    channel.create(op.get_bind(), checkfirst=False)
    op.add_column('event_invitations', sa.Column('channel', channel, nullable=True))
""")
lab05.edit(channel_revision, """
    op.drop_column('event_invitations', 'channel')
""", """
    channel.drop(op.get_bind(), checkfirst=False)
    op.drop_column('event_invitations', 'channel')
""")
!flask db upgrade
!flask db downgrade
!flask db upgrade
''', hint="the way down has not run through"),
    ],
    "lab06": [
        # Exercise 1: squawk never run: Dana's swap applied as it is
        Wrong(1, '''
!flask db upgrade
''', hint="squawk still flags 0005"),
        # Exercise 1: ADD VALUE inside the upgrade's transaction: squawk has nothing to say
        Wrong(1, f'''
btc = "migrations/versions/0005_deal_currency_btc.py"
lab06.edit(btc, """
{DANA_SWAP}""", """
    op.execute("SET lock_timeout = '2s'")
    op.execute("SET statement_timeout = '5min'")
    op.execute("ALTER TYPE dealcurrency ADD VALUE IF NOT EXISTS 'BTC' AFTER 'GBP'")


def downgrade():
    # PostgreSQL has no ALTER TYPE ... DROP VALUE: BTC stays in the type.
    pass
""")
{SQUAWK_THEN_UPGRADE}''', hint="inside the upgrade's transaction"),
        # Exercise 1: ADD VALUE in the autocommit_block, without IF NOT EXISTS
        Wrong(1, f'''
btc = "migrations/versions/0005_deal_currency_btc.py"
lab06.edit(btc, """
{DANA_SWAP}""", """
    op.execute("SET lock_timeout = '2s'")
    op.execute("SET statement_timeout = '5min'")
    with op.get_context().autocommit_block():
        op.execute("ALTER TYPE dealcurrency ADD VALUE 'BTC' AFTER 'GBP'")


def downgrade():
    # PostgreSQL has no ALTER TYPE ... DROP VALUE: BTC stays in the type.
    pass
""")
{SQUAWK_THEN_UPGRADE}''', hint="write ADD VALUE IF NOT EXISTS"),
        # Exercise 1: upgrade() made safe, downgrade() left swapping the type back
        Wrong(1, f'''
btc = "migrations/versions/0005_deal_currency_btc.py"
lab06.edit(btc, """
{DANA_SWAP_UPGRADE}""", """
    op.execute("SET lock_timeout = '2s'")
    op.execute("SET statement_timeout = '5min'")
    with op.get_context().autocommit_block():
        op.execute("ALTER TYPE dealcurrency ADD VALUE IF NOT EXISTS 'BTC' AFTER 'GBP'")
""")
{SQUAWK_THEN_UPGRADE}''', hint="0005's downgrade() should leave BTC in place"),
        # Exercise 1: squawk satisfied, but the timeouts SET for the session and never put
        # back: every later revision of the same upgrade runs with 2 s and 5 min
        Wrong(1, f'''
btc = "migrations/versions/0005_deal_currency_btc.py"
lab06.edit(btc, """
{DANA_SWAP}""", """
    op.execute("SET lock_timeout = '2s'")
    op.execute("SET statement_timeout = '5min'")
    with op.get_context().autocommit_block():
        op.execute("ALTER TYPE dealcurrency ADD VALUE IF NOT EXISTS 'BTC' AFTER 'GBP'")


def downgrade():
    # PostgreSQL has no ALTER TYPE ... DROP VALUE: BTC stays in the type.
    pass
""")
{SQUAWK_THEN_UPGRADE}''', hint="Put both back after ADD VALUE"),
        # Exercise 2: "cannot run inside a transaction block", so CONCURRENTLY taken out:
        # it runs, and the build blocks every write to contact_events
        Wrong(2, f'''
!flask db upgrade
grace = "migrations/versions/0006_index_contact_events_happened_at.py"
lab06.edit(grace, """
{CAROL_INDEX}""", """
    op.drop_index('ix_contact_events_happened_at', table_name='contact_events', if_exists=True)
    op.create_index('ix_contact_events_happened_at', 'contact_events', ['happened_at'],
                    if_not_exists=True)
""")
lab06.edit(grace, """
{CAROL_DROP}""", """
def downgrade():
    op.drop_index('ix_contact_events_happened_at', table_name='contact_events', if_exists=True)
""")
!flask db upgrade
''', hint="keep CONCURRENTLY"),
        # Exercise 2: upgrade() fixed, downgrade() left in the transaction
        Wrong(2, f'''
grace = "migrations/versions/0006_index_contact_events_happened_at.py"
lab06.edit(grace, """
{CAROL_INDEX}""", """
    with op.get_context().autocommit_block():
        op.drop_index('ix_contact_events_happened_at', table_name='contact_events',
                      postgresql_concurrently=True, if_exists=True)
        op.create_index('ix_contact_events_happened_at', 'contact_events', ['happened_at'],
                        postgresql_concurrently=True, if_not_exists=True)
""")
!flask db upgrade
''', hint="0006's downgrade() runs DROP INDEX CONCURRENTLY inside the transaction too"),
        # Exercise 2: the drop that the error line names deleted, the build put in the block:
        # valid today, and a retry after a failed build keeps the INVALID index
        Wrong(2, f'''
grace = "migrations/versions/0006_index_contact_events_happened_at.py"
lab06.edit(grace, """
{CAROL_INDEX}""", """
    with op.get_context().autocommit_block():
        op.create_index('ix_contact_events_happened_at', 'contact_events', ['happened_at'],
                        postgresql_concurrently=True, if_not_exists=True)
""")
lab06.edit(grace, """
{CAROL_DROP}""", """
def downgrade():
    with op.get_context().autocommit_block():
        op.drop_index('ix_contact_events_happened_at', table_name='contact_events',
                      postgresql_concurrently=True, if_exists=True)
""")
!flask db upgrade
''', hint="keep 0006's drop_index before create_index"),
        # Exercise 3: the merge revision written, never applied
        Wrong(3, f'''
{FRANK_COLUMN}!flask db merge heads -m "merge frank" --rev-id 0007
''', hint="run `flask db upgrade`"),
        # Exercise 3: both heads applied with `upgrade heads`, the fork left in migrations/
        Wrong(3, f'''
{FRANK_COLUMN}!flask db upgrade heads
''', hint="migrations/ has 2 heads"),
        # Exercise 3: one head again and applied, models.py never given the column
        Wrong(3, '''
!flask db merge heads -m "merge frank" --rev-id 0007
!flask db upgrade
''', hint="`flask db check` fails"),
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
        # Exercise 1: put back, but as '5000ms': still not env.py's value
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
        op.execute("SET lock_timeout = '5000ms'")
""")
!flask trace upgrade --no-times --save traces/0004.json
''', hint="put env.py's lock_timeout back"),
        # Exercise 2: each statement on its own, but the fill is one UPDATE of every row
        Wrong(2, '''
!flask db downgrade
lab07.sql("UPDATE deals SET note = NULL")
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
        # Exercise 2: only the fill outside the transaction: the DDL after it still holds its
        # ACCESS EXCLUSIVE through the VALIDATE scan, to COMMIT
        Wrong(2, '''
!flask db downgrade
lab07.sql("UPDATE deals SET note = NULL")
lab07.edit(note_file, """
    op.execute("UPDATE deals SET note = '' WHERE note IS NULL")
""", """
    bind = op.get_bind()
    with op.get_context().autocommit_block():
        for low in range(0, 600_000, 20_000):
            bind.execute(sa.text("UPDATE deals SET note = '' WHERE id > :low AND id <= :high"
                                 " AND note IS NULL"), {"low": low, "high": low + 20_000})
""")
!flask trace upgrade --no-times --save traces/0005.json
''', hint="held past its own statement"),
        # Exercise 2: each statement on its own, the fill in batches, but a plain SET NOT NULL
        # (no CHECK): it scans every row under ACCESS EXCLUSIVE
        Wrong(2, '''
!flask db downgrade
lab07.sql("UPDATE deals SET note = NULL")
lab07.edit(note_file, """
def upgrade():
    op.execute("ALTER TABLE deals ALTER COLUMN note SET DEFAULT ''")
    op.execute("UPDATE deals SET note = '' WHERE note IS NULL")
    op.execute("ALTER TABLE deals ADD CONSTRAINT deals_note_check "
               "CHECK (note IS NOT NULL) NOT VALID")
    op.execute("ALTER TABLE deals VALIDATE CONSTRAINT deals_note_check")
    op.execute("ALTER TABLE deals ALTER COLUMN note SET NOT NULL")
    op.execute("ALTER TABLE deals DROP CONSTRAINT deals_note_check")
""", """
def upgrade():
    bind = op.get_bind()
    with op.get_context().autocommit_block():
        op.execute("ALTER TABLE deals ALTER COLUMN note SET DEFAULT ''")
        for low in range(0, 600_000, 20_000):
            bind.execute(sa.text("UPDATE deals SET note = '' WHERE id > :low AND id <= :high"
                                 " AND note IS NULL"), {"low": low, "high": low + 20_000})
        op.execute("ALTER TABLE deals ALTER COLUMN note SET NOT NULL")
""")
!flask trace upgrade --no-times --save traces/0005.json
''', hint="SET NOT NULL without a valid CHECK"),
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
    "lab08": [
        # Exercise 1: v2's code calls it `name`, so the learner sends `name`: the API's
        # field is still `title`, v2 answers 400, and no deal comes from v2
        Wrong(1, '''
deal = {"contact_id": 1, "amount": "10.00", "currency": "EUR"}
v1.post("/api/deals", {**deal, "title": "From v1"})
v2.post("/api/deals", {**deal, "name": "From v2"})
''', hint="create a deal titled 'From v2' through v2"),
        # Exercise 1: both deals posted through v1: the database holds both, but v2
        # took none, so the trigger's other direction is not shown
        Wrong(1, '''
deal = {"contact_id": 1, "amount": "10.00", "currency": "EUR"}
v1.post("/api/deals", {**deal, "title": "From v1"})
v1.post("/api/deals", {**deal, "title": "From v2"})
''', hint="create a deal titled 'From v2' through v2"),
        # Exercise 2: the contract again, v1 still in the balancer and serving
        Wrong(2, '''
with traffic.Load(v1, v2, mix=traffic.sales("USD")) as load:
    with load.mark("contract"):
        !flask db upgrade
    load.wait(0.5)
contract_run = load.report
''', hint="stop v1 before the contract"),
        # Exercise 2: v1 stopped and the contract run with no traffic at all, and only
        # then a load, kept as contract_run: it shows nothing of the contract
        Wrong(2, '''
v1.stop()
!flask db upgrade
with traffic.Load(v2, mix=traffic.sales("USD")) as load:
    load.wait(1)
contract_run = load.report
''', hint='inside `with load.mark("contract"):`',
              after='v1 = appserver.start(lab08, "v1")'),
        # Exercise 3: the attribute renamed with its column, and autogenerate's revision
        # written: it would drop contact_events.title with every title in it, and add
        # subject NOT NULL, which fails on a table with rows (made nullable: an empty subject)
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
    "lab09": [
        # Exercise 1: a lock that does not wait: pg_try_advisory_xact_lock returns false at
        # once, and the copies race as without a lock
        Wrong(1, '''
lab09.edit("migrations/env.py", """
import logging
""", """
import logging

import sqlalchemy as sa
""")
lab09.edit("migrations/env.py", """
        with context.begin_transaction():
            context.run_migrations()
""", """
        with context.begin_transaction():
            connection.execute(sa.text("SELECT pg_try_advisory_xact_lock(20260901)"))
            context.run_migrations()
""")
appserver.release(lab09, "v3", migrations=True)
with traffic.Load(v1, health_every=0.2) as load:
    locked = appserver.boot(lab09, "v3", 3, upgrade=True, during_report="deals")
    load.route(v1, *[c.server for c in locked if c.ok])
    load.wait(0.3)
locked_run = load.report
''', hint="a copy failed to boot", after='v1 = appserver.start(lab09, "v1")'),
        # Exercise 2 (diagnose): the deploy's own pid, the session that waits. (The
        # harness's snapshot ends every session on the lab's database, the forgotten one
        # and the deploy too: the answer's first lines set the scene again.)
        Wrong(2, '''
deploy.stop()
forgotten.close()
forgotten = traffic.IdleSession(lab09.url, "UPDATE deals SET title = 'Deal 1 (fixed)' WHERE id = 11",
                                name="psql")
deploy = appserver.Job(lab09, "deploy", "flask db upgrade")
deploy.waits_for_lock()
blocker = lab09.sql("SELECT pid FROM pg_stat_activity WHERE application_name = 'deploy'"
                    " AND datname = current_database()")[0][0]
''', hint="that is the deploy's own session", after='''
deploy.stop()
forgotten.close()
forgotten = traffic.IdleSession(lab09.url, "UPDATE deals SET title = 'Deal 1 (fixed)' WHERE id = 11",
                                name="psql")
deploy = appserver.Job(lab09, "deploy", "flask db upgrade")
deploy.waits_for_lock()
'''),
        # Exercise 3: the column dropped first, while v6 (which maps it) still serves
        Wrong(3, '''
lab09.edit("models.py", """
    title_search = db.Column(db.Text)
""", "")
with traffic.Load(v6, mix=traffic.sales("GBP")) as load:
    load.wait(0.3)
    !flask db migrate -m "drop deal title search" --rev-id 0009
    !flask db upgrade
    v7 = appserver.deploy(lab09, "v7")
    load.route(v6, v7)
    load.wait(0.3)
    load.route(v7)
    v6.stop()
    load.wait(0.3)
drop_run = load.report
''', hint="a request failed", after='v6 = appserver.start(lab09, "v6")'),
    ],
    "lab10": [
        # Exercise 1: every row of a duplicated event deleted, the first ones too
        Wrong(1, r'''
lab10.edit("migrations/versions/0010_events_once.py", """
def upgrade():
    with op.get_context().autocommit_block():
""", """
def upgrade():
    op.execute(\"\"\"
        DELETE FROM contact_events WHERE (contact_id, title, happened_at) IN (
            SELECT contact_id, title, happened_at FROM contact_events
            GROUP BY 1, 2, 3 HAVING count(*) > 1)
    \"\"\")
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS contact_events_once")
""")
!flask db upgrade
''', hint="keep one row of each duplicated event"),
        # Exercise 1: the copies removed, but the failed build's INVALID index left:
        # the retry fails with "already exists"
        Wrong(1, r'''
lab10.edit("migrations/versions/0010_events_once.py", """
def upgrade():
    with op.get_context().autocommit_block():
""", """
def upgrade():
    op.execute(\"\"\"
        DELETE FROM contact_events copy USING contact_events first
        WHERE (copy.contact_id, copy.title, copy.happened_at)
            = (first.contact_id, first.title, first.happened_at) AND copy.id > first.id
    \"\"\")
    with op.get_context().autocommit_block():
""")
!flask db upgrade
''', hint="the failed build left an INVALID index"),
        # Exercise 2: the foreign key as autogenerate writes it: a scan under a write lock
        Wrong(2, '''
from pathlib import Path
Path("migrations/versions/0011_event_contact_fk.py").write_text(\'\'\'"""event contact fk

Revision ID: 0011
Revises: 0010
"""
from alembic import op

revision = "0011"
down_revision = "0010"


def upgrade():
    op.create_foreign_key("contact_events_contact_id_fkey", "contact_events", "contacts",
                          ["contact_id"], ["id"])


def downgrade():
    op.drop_constraint("contact_events_contact_id_fkey", "contact_events", type_="foreignkey")
\'\'\')
!flask db upgrade
''', hint="add it NOT VALID"),
        # Exercise 2: NOT VALID, and never validated
        Wrong(2, '''
from pathlib import Path
Path("migrations/versions/0011_event_contact_fk.py").write_text(\'\'\'"""event contact fk

Revision ID: 0011
Revises: 0010
"""
from alembic import op

revision = "0011"
down_revision = "0010"


def upgrade():
    op.create_foreign_key("contact_events_contact_id_fkey", "contact_events", "contacts",
                          ["contact_id"], ["id"], postgresql_not_valid=True)


def downgrade():
    op.drop_constraint("contact_events_contact_id_fkey", "contact_events", type_="foreignkey")
\'\'\')
!flask db upgrade
''', hint="validate it in another transaction"),
        # Exercise 3: the type changed with a USING that computes: a rewrite
        Wrong(3, '''
from pathlib import Path
Path("migrations/versions/0012_longer_contact_names.py").write_text(\'\'\'"""longer names

Revision ID: 0012
Revises: 0011
"""
from alembic import op
import sqlalchemy as sa

revision = "0012"
down_revision = "0011"


def upgrade():
    op.alter_column("contacts", "name", type_=sa.String(200), postgresql_using="trim(name)")


def downgrade():
    op.alter_column("contacts", "name", type_=sa.String(120))
\'\'\')
!flask db upgrade
''', hint="contacts was rewritten"),
        # Exercise 3: done by hand in SQL, no revision
        Wrong(3, '''
lab10.sql("ALTER TABLE contacts ALTER COLUMN name TYPE varchar(200)")
''', hint="write it as a revision"),
        # Exercise 3: a revision that shortens instead
        Wrong(3, '''
from pathlib import Path
Path("migrations/versions/0012_longer_contact_names.py").write_text(\'\'\'"""names

Revision ID: 0012
Revises: 0011
"""
from alembic import op
import sqlalchemy as sa

revision = "0012"
down_revision = "0011"


def upgrade():
    op.alter_column("contacts", "name", type_=sa.String(100))


def downgrade():
    op.alter_column("contacts", "name", type_=sa.String(120))
\'\'\')
!flask db upgrade
''', hint="must hold 200 characters"),
    ],
    "lab11": [
        # Exercise 1: upgrade staging as it is: its alembic_version says head, so nothing runs
        Wrong(1, '''
!LABAPP_DATABASE={staging.database} flask db upgrade
''', hint="staging has no deals.closed_at"),
        # Exercise 1: a guess instead of a comparison: "the one before the head", then
        # upgrade: closed_at comes, but 0005 and 0006 never run there
        Wrong(1, '''
!LABAPP_DATABASE={staging.database} flask db stamp 0006
!LABAPP_DATABASE={staging.database} flask db upgrade
''', hint="staging's schema still differs from production's"),
        # Exercise 2: the revision by hand, with the name the server gave the constraint in
        # 2019: 0002 renamed it, so the upgrade fails and nothing changes
        Wrong(2, '''
lab11.edit("models.py", """
    email = db.Column(db.String(200), nullable=False, unique=True)
""", """
    email = db.Column(db.String(200), nullable=False)
""")
from pathlib import Path
Path("migrations/versions/0008_emails_may_repeat.py").write_text(
    '"""emails may repeat"""\\nfrom alembic import op\\n\\n'
    "revision = '0008'\\ndown_revision = '0007'\\nbranch_labels = None\\ndepends_on = None\\n\\n\\n"
    "def upgrade():\\n    op.drop_constraint('contacts_email_key', 'contacts', type_='unique')\\n\\n\\n"
    "def downgrade():\\n    op.create_unique_constraint(None, 'contacts', ['email'])\\n")
!flask db upgrade
''', hint="contacts.email is still unique in production"),
        # Exercise 3: the model changed and migrate run, without compare_server_default:
        # "No changes in schema detected", no revision written; the database still defaults to USD
        Wrong(3, '''
lab11.edit("models.py", """
    currency = db.Column(db.String(3), nullable=False, server_default="USD")
""", """
    currency = db.Column(db.String(3), nullable=False, server_default="EUR")
""")
!flask db migrate -m "deals in euros" --rev-id 0009
!flask db upgrade
''', hint="still defaults to"),
        # Exercise 3: migrate wrote nothing, so an empty revision 0009 by hand (`flask db
        # revision`), applied, and production's default changed in SQL: production says EUR,
        # but a database built from the revisions says USD
        Wrong(3, '''
lab11.edit("models.py", """
    currency = db.Column(db.String(3), nullable=False, server_default="USD")
""", """
    currency = db.Column(db.String(3), nullable=False, server_default="EUR")
""")
!flask db revision -m "deals in euros" --rev-id 0009
!flask db upgrade
lab11.sql("ALTER TABLE deals ALTER COLUMN currency SET DEFAULT 'EUR'")
''', hint="revision 0009 does not set the new default"),
    ],
}

RIGHT = {
    "lab08": [
        # Exercise 3: the column's name in single quotes
        Right(3, '''
lab08.edit("models.py", """
    title = db.Column(db.String(200), nullable=False)
    happened_at = db.Column(db.DateTime, nullable=False)
""", """
    subject = db.Column('title', db.String(200), nullable=False)
    happened_at = db.Column(db.DateTime, nullable=False)
""")
!flask db check
'''),
    ],
    "lab10": [
        # Exercise 2: split in two revisions, the second validating in autocommit_block()
        Right(2, '''
from pathlib import Path
Path("migrations/versions/0011_event_contact_fk.py").write_text(\'\'\'"""event contact fk, not valid

Revision ID: 0011
Revises: 0010
"""
from alembic import op

revision = "0011"
down_revision = "0010"


def upgrade():
    op.execute("ALTER TABLE contact_events ADD CONSTRAINT contact_events_contact_id_fkey"
               " FOREIGN KEY (contact_id) REFERENCES contacts (id) NOT VALID")


def downgrade():
    op.drop_constraint("contact_events_contact_id_fkey", "contact_events", type_="foreignkey")
\'\'\')
Path("migrations/versions/0012_validate_event_contact_fk.py").write_text(\'\'\'"""validate it

Revision ID: 0012
Revises: 0011
"""
from alembic import op

revision = "0012"
down_revision = "0011"


def upgrade():
    with op.get_context().autocommit_block():
        op.execute("ALTER TABLE contact_events VALIDATE CONSTRAINT contact_events_contact_id_fkey")


def downgrade():
    pass
\'\'\')
!flask db upgrade
'''),
    ],
}
