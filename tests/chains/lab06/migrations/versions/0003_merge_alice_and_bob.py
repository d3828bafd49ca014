"""merge alice and bob

Revision ID: 0003
Revises: 0002a, 0002b
Create Date: 2026-11-25 04:42:02.072675

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = ('0002a', '0002b')
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
