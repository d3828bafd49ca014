"""The app factory and the one place that picks the database."""
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from labapp import create_app
from labapp.server import config, pgserver
from labapp.errors import LabError


def test_test_config_overrides_environment(db_url):
    app = create_app({"SQLALCHEMY_DATABASE_URI": db_url, "TESTING": True})
    assert app.testing
    assert app.config["SQLALCHEMY_DATABASE_URI"] == db_url


def test_database_url_from_environment(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db.example:5432/crm")
    monkeypatch.delenv("LABAPP_DATABASE", raising=False)
    url = make_url(create_app().config["SQLALCHEMY_DATABASE_URI"])
    # bare postgresql:// would mean psycopg 3 on SQLAlchemy 2.1; the kit ships psycopg2
    assert url.drivername == "postgresql+psycopg2"
    assert (url.host, url.database, url.password) == ("db.example", "crm", "p")


def test_lab_database_names_the_database_the_app_uses(monkeypatch):
    """A lab's setup cell sets LABAPP_DATABASE: its `!flask` commands use that database."""
    monkeypatch.setenv("DATABASE_URL", "mysql://root@127.0.0.1:3306/test")
    monkeypatch.setenv("LABAPP_DATABASE", "lab01")
    url = make_url(create_app().config["SQLALCHEMY_DATABASE_URI"])
    assert (url.drivername, url.database) == ("mysql+pymysql", "lab01")
    assert make_url(config.database_url()).database == "test"  # asked for none: the URL's own


def test_sqlite_url_is_kept_as_given(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "sqlite:///crm.sqlite")
    monkeypatch.setenv("LABAPP_DATABASE", "lab01")
    assert config.database_url("lab01") == "sqlite:///crm.sqlite"


def test_without_database_url_the_embedded_server_is_used(monkeypatch):
    """The URL names the embedded server's socket; the first connection starts it."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    url = make_url(config.database_url("some_lab"))
    assert url.database == "some_lab"
    assert url.query["host"].endswith(("pgdata", ".pgdata")) or "labapp-pg" in url.query["host"]
    engine = sa.create_engine(url.set(database="postgres"), poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW data_directory").scalar() == str(pgserver.data_dir())


@pytest.mark.parametrize("raw", ["not a url", "postgresql://u@h:port/db"])
def test_malformed_database_url_is_one_clear_error(monkeypatch, raw):
    monkeypatch.setenv("DATABASE_URL", raw)
    with pytest.raises(LabError, match="DATABASE_URL is not a database URL"):
        create_app()


def test_models_module_is_chosen_by_the_caller(db_url):
    from labapp import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": db_url})
    assert {"contacts", "deals", "contact_events"} <= set(db.metadata.tables)
    assert app.extensions["migrate"].db is db


def test_flask_migrate_writes_changes_in_batch_mode(db_url):
    """Lab 01 explains the `batch_alter_table` blocks of generated revisions: Flask-Migrate
    turns Alembic's render_as_batch on by default, and the kit keeps its default."""
    from flask_migrate import Migrate

    assert Migrate().alembic_ctx_kwargs["render_as_batch"] is True
    app = create_app({"SQLALCHEMY_DATABASE_URI": db_url})
    assert app.extensions["migrate"].configure_args["render_as_batch"] is True
