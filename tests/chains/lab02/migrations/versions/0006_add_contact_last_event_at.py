"""add contact last_event_at

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('contacts', sa.Column('last_event_at', sa.DateTime(), nullable=True))
    # backfill from the events each contact already has
    op.execute("""
        UPDATE contacts
        SET last_event_at = (SELECT max(e.occurred_at) FROM contact_events e
                             WHERE e.contact_id = contacts.id)
    """)


def downgrade():
    # the column only caches what contact_events holds: dropping it loses nothing
    op.drop_column('contacts', 'last_event_at')
