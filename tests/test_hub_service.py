"""The hub's service files are what the guide says they are: the systemd unit
(tools/hub/labapp-hub.service) passes `systemd-analyze verify` once its paths point at
this clone, starts this kit's hub with this kit's config and reads hub.env; and
every setting in hub.env.example is one the config reads (a typo there would be
silently ignored by the hub)."""
import re
import shutil
import subprocess

import pytest

from helpers import ROOT

HUB = ROOT / "tools" / "hub"


def unit_for_this_clone(tmp_path, text=None):
    env = tmp_path / "hub.env"
    env.write_text((HUB / "hub.env.example").read_text())
    text = (text or (HUB / "labapp-hub.service").read_text())
    unit = tmp_path / "labapp-hub.service"
    kit = tmp_path / "kit"  # this clone by a path with no space (the unit's /opt/labapp has none)
    if not kit.exists():
        kit.symlink_to(ROOT)
    unit.write_text(text.replace("/opt/labapp", str(kit)).replace("/etc/labapp/hub.env", str(env)))
    return unit


def verify(unit):
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    return done.returncode, (done.stdout + done.stderr).strip()


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="no systemd-analyze on this machine")
def test_the_unit_verifies_and_a_broken_one_does_not(tmp_path):
    if not (ROOT / ".venv" / "bin" / "jupyterhub").exists():
        pytest.skip("no .venv/bin/jupyterhub in this clone (make venv)")
    assert verify(unit_for_this_clone(tmp_path)) == (0, "")
    text = (HUB / "labapp-hub.service").read_text()
    broken = unit_for_this_clone(tmp_path, text.replace("KillMode=mixed", "KillMode=mixd"))
    assert "kill mode" in verify(broken)[1]


def test_the_unit_runs_this_kits_hub_with_this_kits_config_and_settings():
    text = (HUB / "labapp-hub.service").read_text()
    assert "ExecStart=/opt/labapp/.venv/bin/jupyterhub -f /opt/labapp/tools/hub/jupyterhub_config.py" in text
    assert "EnvironmentFile=/etc/labapp/hub.env" in text
    assert "WorkingDirectory=/var/lib/labapp-hub" in text


def test_every_setting_in_hub_env_is_one_the_config_reads():
    config = (HUB / "jupyterhub_config.py").read_text()
    example = (HUB / "hub.env.example").read_text()
    names = re.findall(r"^#? ?(LABAPP_[A-Z_]+)=", example, re.M)
    assert {"LABAPP_HUB_ROSTER", "LABAPP_HUB_IP", "LABAPP_HUB_PORT", "LABAPP_HUB_SSL_CERT",
            "LABAPP_HUB_SSL_KEY", "LABAPP_HUB_CULL_IDLE", "LABAPP_HUB_STATE"} <= set(names)
    for name in names:
        assert f'os.environ.get("{name}"' in config or f'os.environ["{name}"]' in config, name
    state = re.search(r"^LABAPP_HUB_STATE=(.*)$", example, re.M).group(1)
    assert state == "/var/lib/labapp-hub"  # the unit's StateDirectory: the hub's database survives
