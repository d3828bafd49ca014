"""merge frank

Revision ID: 0006
Revises: 0005, 0005f
Create Date: 2026-11-25 04:42:14.462704

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = ('0005', '0005f')
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
