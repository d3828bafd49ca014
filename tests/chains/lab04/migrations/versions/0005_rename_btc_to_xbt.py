"""rename btc to xbt

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
    # a catalog change (PostgreSQL 10+): rows holding BTC now read XBT, no rewrite
    op.execute("ALTER TYPE dealcurrency RENAME VALUE 'BTC' TO 'XBT'")


def downgrade():
    op.execute("ALTER TYPE dealcurrency RENAME VALUE 'XBT' TO 'BTC'")
