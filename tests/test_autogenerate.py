"""What lab 02 says autogenerate sees, proved against the real server: a model's
`server_default` reaches the revision, its Python-side `default=` does not."""
import sqlalchemy as sa
from alembic.autogenerate import produce_migrations, render_python_code
from alembic.migration import MigrationContext

from helpers import postgres_only

pytestmark = postgres_only


def rendered_upgrade(db_url, column):
    """The upgrade() autogenerate writes for the kit's `contacts` plus `column`."""
    metadata = sa.MetaData()
    sa.Table("contacts", metadata,
             sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("name", sa.String(120), nullable=False),
             sa.Column("email", sa.String(200), nullable=False, unique=True),
             column)
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"include_name": lambda name, kind, parent:
                                                             kind != "table" or name == "contacts"})
            return render_python_code(produce_migrations(context, metadata).upgrade_ops)
    finally:
        engine.dispose()


def test_a_python_default_never_reaches_the_revision(schema, db_url):
    code = rendered_upgrade(db_url, sa.Column("active", sa.Boolean, nullable=False, default=True))
    assert "sa.Column('active', sa.Boolean(), nullable=False)" in code
    assert "default" not in code


def test_a_server_default_does(schema, db_url):
    code = rendered_upgrade(db_url, sa.Column("active", sa.Boolean, nullable=False,
                                              server_default=sa.text("true")))
    assert "server_default=sa.text('true')" in code
