"""currency defaults

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

# the type exists (0001 created it): use it, do not create it again
dealcurrency = postgresql.ENUM(name='dealcurrency', create_type=False)


def upgrade():
    op.alter_column('deals', 'currency', server_default='USD')
    op.add_column('contacts', sa.Column('preferred_currency', dealcurrency, nullable=True))


def downgrade():
    op.drop_column('contacts', 'preferred_currency')
    op.alter_column('deals', 'currency', server_default=None)
