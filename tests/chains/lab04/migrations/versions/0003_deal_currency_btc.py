"""deal currency btc

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

OLD = ('USD', 'EUR', 'AED', 'GBP')
NEW = OLD + ('BTC',)

old_dealcurrency = postgresql.ENUM(*OLD, name='dealcurrency')
new_dealcurrency = postgresql.ENUM(*NEW, name='dealcurrency')
temp_dealcurrency = postgresql.ENUM(*NEW, name='_dealcurrency')


# every column of type dealcurrency: (table, column, server default or None)
COLUMNS = [('contacts', 'preferred_currency', None), ('deals', 'currency', 'USD')]


def _retype(type_name):
    """ALTER every COLUMNS column to the enum type `type_name`, casting each value through text."""
    for table, column, default in COLUMNS:
        if default:
            op.alter_column(table, column, server_default=None)  # a default blocks the cast
        op.execute(f'ALTER TABLE {table} ALTER COLUMN {column} TYPE {type_name}'
                   f' USING {column}::text::{type_name}')
        if default:
            op.alter_column(table, column, server_default=default)  # back, now of type_name


def upgrade():
    bind = op.get_bind()
    temp_dealcurrency.create(bind, checkfirst=False)
    _retype('_dealcurrency')
    old_dealcurrency.drop(bind, checkfirst=False)
    new_dealcurrency.create(bind, checkfirst=False)
    _retype('dealcurrency')
    temp_dealcurrency.drop(bind, checkfirst=False)


def downgrade():
    bind = op.get_bind()
    # rows holding a label that the old type lacks (BTC) cannot go back: refuse, don't guess
    for table, column, _ in COLUMNS:
        count = bind.execute(sa.text(f'SELECT count(*) FROM {table}'
                                     f' WHERE {column}::text <> ALL(:old)'),
                             {'old': list(OLD)}).scalar()
        if count:
            raise RuntimeError(
                f'{count} row(s) of {table}.{column} hold a currency that revision 0002 does not'
                f' know ({", ".join(OLD)} only): update or delete them, then downgrade again')
    temp_dealcurrency.create(bind, checkfirst=False)
    _retype('_dealcurrency')
    new_dealcurrency.drop(bind, checkfirst=False)
    old_dealcurrency.create(bind, checkfirst=False)
    _retype('dealcurrency')
    temp_dealcurrency.drop(bind, checkfirst=False)
