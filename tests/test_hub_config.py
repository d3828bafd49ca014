"""The shipped hub config (tools/hub/jupyterhub_config.py) is wired as the guide
says, read the way JupyterHub reads it (tests/test_hub.py runs it for real)."""
import json

import pytest
from traitlets.config import Config

from helpers import ROOT

CONFIG = ROOT / "tools" / "hub" / "jupyterhub_config.py"


def load(monkeypatch, **env):
    for name in ("LABAPP_ROOM_DATABASE_URL", "LABAPP_ROOM_FILE", "LABAPP_HUB_DRIVER_TOKEN",
                 "LABAPP_HUB_IP", "LABAPP_HUB_SYSTEM_USERS", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {"LABAPP_ROOM_PASSWORD": "a-room-password", **env}.items():
        monkeypatch.setenv(name, value)
    c = Config()
    exec(compile(CONFIG.read_text(), str(CONFIG), "exec"), {"get_config": lambda: c, "__file__": str(CONFIG)})
    return c


class FakeSpawner:
    class user:
        name = "alice"


def test_a_room_behind_one_password_on_loopback(monkeypatch):
    c = load(monkeypatch)
    assert c.JupyterHub.authenticator_class == "shared-password"
    assert c.SharedPasswordAuthenticator.user_password == "a-room-password"
    assert c.JupyterHub.ip == "127.0.0.1" and c.JupyterHub.hub_ip == "127.0.0.1"
    assert c.ConfigurableHTTPProxy.command[0].endswith("tools/hub/node_modules/.bin/configurable-http-proxy")
    assert callable(c.Spawner.pre_spawn_hook) and callable(c.Spawner.post_stop_hook)
    assert "services" not in c.JupyterHub  # no driver token: no service that can act for learners


def test_the_rooms_server_reaches_learners_through_the_spawners_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgresql://the-hubs-own@db/x")  # must not leak
    c = load(monkeypatch)
    assert c.Spawner.environment["DATABASE_URL"](FakeSpawner) == ""  # each learner's embedded server
    c = load(monkeypatch, LABAPP_ROOM_DATABASE_URL="postgresql://room@db/postgres")
    assert c.Spawner.environment["DATABASE_URL"](FakeSpawner) == "postgresql://room@db/postgres"
    room = tmp_path / "room.json"
    room.write_text(json.dumps({"learners": {"alice": {"url": "postgresql://alice:pw@db/postgres"}}}))
    c = load(monkeypatch, LABAPP_ROOM_FILE=str(room), LABAPP_ROOM_DATABASE_URL="postgresql://room@db/x")
    assert c.Spawner.environment["DATABASE_URL"](FakeSpawner) == "postgresql://alice:pw@db/postgres"


def test_a_short_password_is_refused_by_jupyterhub(monkeypatch):
    from jupyterhub.authenticators.shared import SharedPasswordAuthenticator

    c = load(monkeypatch, LABAPP_ROOM_PASSWORD="short")
    with pytest.raises(ValueError, match="at least 8"):
        SharedPasswordAuthenticator(config=c).check_allow_config()
