"""rename event happened_at

Revision ID: 0005
Revises: 0004
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.alter_column('contact_events', 'happened_at', new_column_name='occurred_at')


def downgrade():
    op.alter_column('contact_events', 'occurred_at', new_column_name='happened_at')
