"""the old CRM's import: legacy references, and no foreign keys (for speed)

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.drop_constraint("deals_contact_id_fkey", "deals", type_="foreignkey")
    op.drop_constraint("contact_events_contact_id_fkey", "contact_events", type_="foreignkey")
    op.add_column("deals", sa.Column("legacy_ref", sa.String(20), nullable=True))


def downgrade():
    op.drop_column("deals", "legacy_ref")
    op.create_foreign_key("contact_events_contact_id_fkey", "contact_events", "contacts",
                          ["contact_id"], ["id"])
    op.create_foreign_key("deals_contact_id_fkey", "deals", "contacts", ["contact_id"], ["id"])