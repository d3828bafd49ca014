"""index deals closed_at

Revision ID: 0004
Revises: 0003
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    op.execute("SET lock_timeout = '2s'")
    op.execute("SET statement_timeout = '5min'")
    with op.get_context().autocommit_block():
        op.create_index('ix_deals_closed_at', 'deals', ['closed_at'],
                        postgresql_concurrently=True, if_not_exists=True)


def downgrade():
    with op.get_context().autocommit_block():
        op.drop_index('ix_deals_closed_at', table_name='deals',
                      postgresql_concurrently=True, if_exists=True)
