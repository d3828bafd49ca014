"""Lab 01's basic path on MySQL/MariaDB: createdb, db init, migrate, upgrade.

Needs a MariaDB at 127.0.0.1:3306 (root, no password), as on the CI machine;
elsewhere the tests skip with a reason (under CI=true they fail instead)."""
import os
import shutil
import socket
import subprocess
import uuid

import pytest

from labapp.runtime import workspace

from conftest import BIN

MARIADB = os.environ.get("LABAPP_MARIADB_URL", "mysql://root@127.0.0.1:3306/")


def reachable():
    try:
        socket.create_connection(("127.0.0.1", 3306), timeout=1).close()
        return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(
    not reachable() and os.environ.get("CI") != "true",
    reason="no MariaDB/MySQL on 127.0.0.1:3306 (set CI=true to require it)",
)


def flask(workspace, url, *args):
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DATABASE_URL": url}
    env.pop("FLASK_APP", None)
    env.pop("LABAPP_DATABASE", None)
    return subprocess.run(["flask", *args], cwd=workspace, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)


def test_first_migration_on_mariadb(tmp_path):
    shutil.copy(workspace.APP, tmp_path)
    shutil.copy(workspace.MODELS, tmp_path)
    url = MARIADB + f"lab01_{uuid.uuid4().hex[:8]}"
    created = flask(tmp_path, url, "createdb")
    assert created.returncode == 0, created.stdout
    try:
        assert "Created database" in created.stdout
        again = flask(tmp_path, url, "createdb")
        assert again.returncode == 1 and "already exists" in again.stdout
        for step in (["db", "init"], ["db", "migrate", "-m", "create crm tables", "--rev-id", "0001"],
                     ["db", "upgrade"]):
            proc = flask(tmp_path, url, *step)
            assert proc.returncode == 0, proc.stdout
        assert "Context impl MySQLImpl" in proc.stdout
        current = flask(tmp_path, url, "db", "current")
        assert "0001 (head)" in current.stdout
        # MySQL's ENUM is inline in the column: no named type to create or leak
        revision = (tmp_path / "migrations" / "versions" / "0001_create_crm_tables.py").read_text()
        assert "name='dealcurrency'" in revision
    finally:
        dropped = flask(tmp_path, url, "dropdb", "--yes")
        assert dropped.returncode == 0, dropped.stdout
