"""split contact names

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    # 1. the new columns, nullable for now: the table has rows
    op.add_column('contacts', sa.Column('first_name', sa.String(length=120), nullable=True))
    op.add_column('contacts', sa.Column('last_name', sa.String(length=120), nullable=True))
    # 2. backfill: up to the first space is the first name, the rest the last name
    op.execute("""
        UPDATE contacts
        SET first_name = split_part(full_name, ' ', 1),
            last_name = substr(full_name, length(split_part(full_name, ' ', 1)) + 2)
    """)
    # 3. every row has values now: require them, and drop the old column
    op.alter_column('contacts', 'first_name', nullable=False)
    op.alter_column('contacts', 'last_name', nullable=False)
    op.drop_column('contacts', 'full_name')


def downgrade():
    # the same three steps backwards: no name is lost either way
    op.add_column('contacts', sa.Column('full_name', sa.String(length=120), nullable=True))
    op.execute("UPDATE contacts SET full_name = trim(first_name || ' ' || last_name)")
    op.alter_column('contacts', 'full_name', nullable=False)
    op.drop_column('contacts', 'last_name')
    op.drop_column('contacts', 'first_name')
