"""deal currency BTC

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
    op.execute("SET lock_timeout = '2s'")
    op.execute("SET statement_timeout = '5min'")
    with op.get_context().autocommit_block():
        op.execute("ALTER TYPE dealcurrency ADD VALUE IF NOT EXISTS 'BTC' AFTER 'GBP'")


def downgrade():
    # PostgreSQL has no ALTER TYPE ... DROP VALUE: BTC stays in the type.
    # Harmless while no row uses it; the models simply never write it.
    pass
