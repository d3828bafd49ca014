"""The shipped hub config (tools/hub/jupyterhub_config.py) is wired as the guide
says, read the way JupyterHub reads it (tests/test_hub.py and tests/test_hub_room.py
run it for real), and the roster it lets in (labapp.room.roster) refuses what it must."""
import json
import os

import pytest
from traitlets.config import Config

from helpers import ROOT, assert_one_line_error, run_flask
from labapp.errors import LabError
from labapp.room import roster

CONFIG = ROOT / "tools" / "hub" / "jupyterhub_config.py"
SETTINGS = ("LABAPP_ROOM_DATABASE_URL", "LABAPP_ROOM_FILE", "LABAPP_HUB_DRIVER_TOKEN", "LABAPP_HUB_IP",
            "LABAPP_HUB_PORT", "LABAPP_HUB_SSL_CERT", "LABAPP_HUB_SSL_KEY", "LABAPP_HUB_CULL_IDLE",
            "LABAPP_HUB_ROSTER", "DATABASE_URL")


@pytest.fixture
def room_roster(tmp_path):
    return roster.write(roster.new(["alice", "bob"]), tmp_path / "roster.txt")


def load(monkeypatch, runnable=True, **env):
    """The config as JupyterHub loads it; `runnable`: whether learners' accounts can run
    this Python (here, as root, pyenv's under /root cannot: tests/test_hub*.py build one
    that can, tools.hub.driver.learners_bin)."""
    from tools.hub import auth

    monkeypatch.setattr(auth, "runnable_by_learners", lambda path: runnable)
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, str(value))
    c = Config()
    exec(compile(CONFIG.read_text(), str(CONFIG), "exec"), {"get_config": lambda: c, "__file__": str(CONFIG)})
    return c


class FakeSpawner:
    class user:
        name = "alice"


def test_a_room_behind_a_roster_on_loopback_with_a_culler(monkeypatch, room_roster):
    from tools.hub import auth

    c = load(monkeypatch, LABAPP_HUB_ROSTER=room_roster)
    assert c.JupyterHub.authenticator_class is auth.RosterAuthenticator
    assert c.RosterAuthenticator.roster_file == str(room_roster)
    assert c.Authenticator.admin_users == {"instructor"}
    assert c.JupyterHub.ip == "127.0.0.1" and c.JupyterHub.hub_ip == "127.0.0.1"
    assert "ssl_cert" not in c.JupyterHub  # plain HTTP only where nobody else listens
    assert c.ConfigurableHTTPProxy.command[0].endswith("tools/hub/node_modules/.bin/configurable-http-proxy")
    assert callable(c.Spawner.pre_spawn_hook) and callable(c.Spawner.post_stop_hook)
    if os.geteuid() == 0:
        assert c.JupyterHub.spawner_class is auth.LearnerSpawner  # as root: jupyter-<name>, not root
    assert "--allow-root" not in c.Spawner.args
    [culler] = c.JupyterHub.services  # no driver token: no service that can act for learners
    assert culler["name"] == "idle-culler" and "--timeout=3600" in culler["command"]
    assert set(c.JupyterHub.load_roles[0]["scopes"]) >= {"delete:servers", "read:users:activity"}


def test_the_listen_address_https_and_the_culler_come_from_the_settings(monkeypatch, room_roster):
    c = load(monkeypatch, LABAPP_HUB_ROSTER=room_roster, LABAPP_HUB_IP="0.0.0.0", LABAPP_HUB_PORT=443,
             LABAPP_HUB_SSL_CERT="/etc/le/fullchain.pem", LABAPP_HUB_SSL_KEY="/etc/le/privkey.pem",
             LABAPP_HUB_CULL_IDLE=0)
    assert (c.JupyterHub.ip, c.JupyterHub.port) == ("0.0.0.0", 443)
    assert (c.JupyterHub.ssl_cert, c.JupyterHub.ssl_key) == ("/etc/le/fullchain.pem", "/etc/le/privkey.pem")
    assert "services" not in c.JupyterHub  # LABAPP_HUB_CULL_IDLE=0: no culler
    with pytest.raises(KeyError):  # a certificate without its key is not half-configured
        load(monkeypatch, LABAPP_HUB_ROSTER=room_roster, LABAPP_HUB_SSL_CERT="/etc/le/fullchain.pem")


def test_no_roster_no_hub(monkeypatch):
    with pytest.raises(SystemExit, match="LABAPP_HUB_ROSTER is not set"):
        load(monkeypatch)


def test_as_root_a_python_learners_cannot_run_stops_the_hub_in_one_line(monkeypatch, room_roster):
    if os.geteuid() != 0:
        pytest.skip("only a hub run as root switches to learners' accounts")
    with pytest.raises(SystemExit, match="learners' accounts cannot run .*install the kit with a Python outside"):
        load(monkeypatch, runnable=False, LABAPP_HUB_ROSTER=room_roster)


def test_runnable_by_learners_reads_every_folder_above(tmp_path):
    from tools.hub import auth

    tool = tmp_path / "a" / "b" / "python"
    tool.parent.mkdir(parents=True)
    tool.write_text("")
    for folder in (tmp_path, tmp_path / "a", tmp_path / "a" / "b"):
        folder.chmod(0o755)
    tool.chmod(0o755)
    assert auth.runnable_by_learners(tool) == all(p.stat().st_mode & 1 for p in tmp_path.parents)
    (tmp_path / "a").chmod(0o700)  # as /root is
    assert not auth.runnable_by_learners(tool)


def test_the_rooms_server_reaches_learners_through_the_spawners_environment(monkeypatch, tmp_path, room_roster):
    monkeypatch.setenv("DATABASE_URL", "postgresql://the-hubs-own@db/x")  # must not leak
    c = load(monkeypatch, LABAPP_HUB_ROSTER=room_roster)
    assert c.Spawner.environment["DATABASE_URL"](FakeSpawner) == ""  # each learner's embedded server
    c = load(monkeypatch, LABAPP_HUB_ROSTER=room_roster, LABAPP_ROOM_DATABASE_URL="postgresql://room@db/postgres")
    assert c.Spawner.environment["DATABASE_URL"](FakeSpawner) == "postgresql://room@db/postgres"
    room = tmp_path / "room.json"
    room.write_text(json.dumps({"learners": {"alice": {"url": "postgresql://alice:pw@db/postgres"}}}))
    c = load(monkeypatch, LABAPP_HUB_ROSTER=room_roster, LABAPP_ROOM_FILE=room,
             LABAPP_ROOM_DATABASE_URL="postgresql://room@db/x")
    assert c.Spawner.environment["DATABASE_URL"](FakeSpawner) == "postgresql://alice:pw@db/postgres"


def test_the_roster_refuses_what_would_let_the_wrong_person_in(tmp_path):
    room = roster.parse("alice pw-alice-1\nbob   pw-bob-22   # the second row\ninstructor pw-instructor admin\n")
    assert room.names == ["alice", "bob", "instructor"] and room.admins == {"instructor"}
    assert room.check("alice", "pw-alice-1")
    assert not room.check("alice", "pw-bob-22")  # someone else's password
    assert not room.check("alicе", "pw-alice-1")  # a Cyrillic е: not on the roster
    assert not room.check("alice", "") and not room.check("alice", None)
    for text, error in [
        ("alice short", "shorter than 8"),
        ("alice pw-alice-1\nalice pw-alice-2", "on the roster twice"),
        ("Root pw-root-123", "not a roster name"),
        ("alice pw-alice-1 teacher", "expected `name password`"),
        ("# nobody\n", "nobody on the roster"),
    ]:
        with pytest.raises(LabError, match=error):
            roster.parse(text)
    made = roster.new(["alice", "bob"])
    assert len(set(made.passwords.values())) == 3 and roster.parse(made.text()).passwords == made.passwords
    path = roster.write(made, tmp_path / "r.txt")
    assert oct(path.stat().st_mode & 0o777) == "0o600"  # passwords: the hub's eyes only


def test_the_roster_command_writes_slips_and_a_file_the_hub_reads(tmp_path):
    out = tmp_path / "roster.txt"
    done = run_flask("room", "roster", "alice", "bob", "--out", str(out))
    assert done.returncode == 0, done.output
    assert roster.load(out).names == ["instructor", "alice", "bob"]
    assert roster.load(out).passwords["alice"] in done.output  # the slips to hand out
    assert_one_line_error(run_flask("room", "roster", "carol", "--out", str(out)), "exists")
    assert roster.load(out).names == ["instructor", "alice", "bob"]  # nothing lost
    assert_one_line_error(run_flask("room", "roster", "Alice", "--out", str(tmp_path / "x.txt")),
                          "'Alice' is not a roster name")
