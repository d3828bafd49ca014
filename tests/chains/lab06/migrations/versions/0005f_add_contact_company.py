"""add contact company

Revision ID: 0005f
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005f'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('contacts', sa.Column('company', sa.String(length=120), nullable=True))


def downgrade():
    op.drop_column('contacts', 'company')
