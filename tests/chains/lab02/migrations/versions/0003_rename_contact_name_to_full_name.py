"""rename contact name to full_name

Revision ID: 0003
Revises: 0002
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    # a rename, not drop + add: the values stay in the column
    op.alter_column('contacts', 'name', new_column_name='full_name')


def downgrade():
    op.alter_column('contacts', 'full_name', new_column_name='name')
