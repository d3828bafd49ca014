"""Lab 01's basic path on MySQL/MariaDB: createdb, db init, migrate, upgrade.

Needs a MariaDB at 127.0.0.1:3306 (root, no password), as on the CI machine;
elsewhere the tests skip with a reason (under CI=true they fail instead)."""
import os
import shutil
import uuid

import pytest

from helpers import flask_in, mariadb_reachable
from labapp.runtime import workspace

MARIADB = os.environ.get("LABAPP_MARIADB_URL", "mysql://root@127.0.0.1:3306/")


pytestmark = pytest.mark.skipif(
    not mariadb_reachable() and os.environ.get("CI") != "true",
    reason="no MariaDB/MySQL on 127.0.0.1:3306 (set CI=true to require it)",
)


def test_first_migration_on_mariadb(tmp_path):
    shutil.copy(workspace.APP, tmp_path)
    shutil.copy(workspace.MODELS, tmp_path)
    url = MARIADB + f"lab01_{uuid.uuid4().hex[:8]}"
    mariadb = {"DATABASE_URL": url, "LABAPP_DATABASE": None}  # not the test server's database
    created = flask_in(tmp_path, "createdb", env=mariadb, timeout=60)
    assert created.returncode == 0, created.stdout
    try:
        assert "Created database" in created.stdout
        again = flask_in(tmp_path, "createdb", env=mariadb, timeout=60)
        assert again.returncode == 1 and "already exists" in again.stdout
        for step in (["db", "init"], ["db", "migrate", "-m", "create crm tables", "--rev-id", "0001"],
                     ["db", "upgrade"]):
            proc = flask_in(tmp_path, *step, env=mariadb, timeout=60)
            assert proc.returncode == 0, proc.stdout
        assert "Context impl MySQLImpl" in proc.stdout
        current = flask_in(tmp_path, "db", "current", env=mariadb, timeout=60)
        assert "0001 (head)" in current.stdout
        # MySQL's ENUM is inline in the column: no named type to create or leak
        revision = (tmp_path / "migrations" / "versions" / "0001_create_crm_tables.py").read_text()
        assert "name='dealcurrency'" in revision
    finally:
        dropped = flask_in(tmp_path, "dropdb", "--yes", env=mariadb, timeout=60)
        assert dropped.returncode == 0, dropped.stdout
