"""deals.contact_id references contacts

Revision ID: 0003
Revises: 0002
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_foreign_key("deals_contact_id_fkey", "deals", "contacts", ["contact_id"], ["id"])


def downgrade():
    op.drop_constraint("deals_contact_id_fkey", "deals", type_="foreignkey")