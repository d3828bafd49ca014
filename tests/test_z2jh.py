"""tools/z2jh/ (README "Past one machine"): Zero to JupyterHub values for 50-500 learners
and the singleuser image's Dockerfile, checked offline (no Kubernetes, no Docker here).

The chart's values.schema.json is in no npm or PyPI package, so it is not vendored: the
values were validated once against chart 4.4.0's schema, merged with the chart's defaults as
helm merges them (README says how). This test checks the structure (each key is one chart
4.4.0 has), and what each learner pod gets: the kit's embedded server (no DATABASE_URL),
memory at least one active learner's measured use, the culler, placeholder pods that can be
evicted, an image from the same requirements.lock, run as uid 1000. The Dockerfile's install
step runs here for real (the kit built as a wheel from the files it copies).
"""
import re
import subprocess
import sys
import zipfile

import yaml

from helpers import ROOT
from tools import bootstrap

Z2JH = ROOT / "tools" / "z2jh"
CONFIG = yaml.safe_load((Z2JH / "config.yaml").read_text())
DOCKERFILE = (Z2JH / "Dockerfile").read_text()
# chart 4.4.0's values.yaml: its top-level keys, and those of the sections used here
CHART = {
    "": {"cull", "custom", "debug", "enabled", "fullnameOverride", "global", "httpRoute", "hub",
         "imagePullSecret", "imagePullSecrets", "ingress", "nameOverride", "prePuller", "proxy",
         "rbac", "scheduling", "singleuser"},
    "singleuser": {"allowPrivilegeEscalation", "cloudMetadata", "cmd", "cpu", "defaultUrl", "events",
                   "extraAnnotations", "extraContainers", "extraEnv", "extraFiles", "extraLabels",
                   "extraNodeAffinity", "extraPodAffinity", "extraPodAntiAffinity", "extraPodConfig",
                   "extraResource", "extraTolerations", "fsGid", "image", "initContainers",
                   "lifecycleHooks", "memory", "networkPolicy", "networkTools", "nodeSelector",
                   "podNameTemplate", "profileList", "serviceAccountName", "startTimeout", "storage",
                   "uid"},
    "scheduling": {"corePods", "podPriority", "userPlaceholder", "userPods", "userScheduler"},
    "cull": {"adminUsers", "concurrency", "enabled", "every", "maxAge", "removeNamedServers",
             "timeout", "users"},
}
MEASURED_MIB = 415  # one active learner on lab 01, RSS (FIELD-NOTES: "JupyterHub on this machine")
UNITS = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def size(text):
    """z2jh's memory sizes (512M, 2G: powers of 1024, as KubeSpawner reads them) in bytes."""
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT])", str(text)).groups()
    return float(number) * UNITS[unit]


def test_every_key_is_one_the_chart_has():
    assert set(CONFIG) <= CHART[""], sorted(set(CONFIG) - CHART[""])
    for section in ("singleuser", "scheduling", "cull"):
        assert set(CONFIG[section]) <= CHART[section], (section, sorted(set(CONFIG[section]) - CHART[section]))


def test_each_learner_pod_runs_the_kit_with_its_embedded_server_and_enough_memory():
    user = CONFIG["singleuser"]
    assert "DATABASE_URL" not in user.get("extraEnv", {})  # the labs start their own server
    guarantee, limit = size(user["memory"]["guarantee"]), size(user["memory"]["limit"])
    assert MEASURED_MIB * 2**20 <= guarantee <= limit
    assert user["cmd"] == "jupyterhub-singleuser"
    # the labs copied into the home, and the first one opened
    command = user["lifecycleHooks"]["postStart"]["exec"]["command"]
    assert command[:4] == ["python", "-m", "labapp.runtime.notebooks", "copy"]
    home = "/home/jovyan/"  # the image's user's home, where its server starts
    assert command[4].startswith(home) and "GIT_CEILING_DIRECTORIES" in user["extraEnv"]
    assert user["defaultUrl"] == f"/lab/tree/{command[4].removeprefix(home)}/00-Welcome.ipynb"


def test_the_culler_and_placeholder_pods_are_on():
    assert CONFIG["cull"]["enabled"] and 0 < CONFIG["cull"]["timeout"] <= 3600
    assert CONFIG["cull"]["every"] < CONFIG["cull"]["timeout"]
    scheduling = CONFIG["scheduling"]
    assert scheduling["userPlaceholder"]["enabled"] and scheduling["userPlaceholder"]["replicas"] > 0
    # without pod priority a real learner's pod cannot evict a placeholder
    assert scheduling["podPriority"]["enabled"]
    assert CONFIG["proxy"]["https"]["enabled"]
    assert CONFIG["hub"]["config"]["JupyterHub"]["authenticator_class"] != "shared-password"


def test_the_image_builds_from_the_lock_as_uid_1000_on_a_supported_python():
    base = re.search(r"^FROM python:(\d+)\.(\d+)-", DOCKERFILE, flags=re.M)
    assert base and (int(base.group(1)), int(base.group(2))) in bootstrap.SUPPORTED
    assert "COPY requirements.lock /tmp/requirements.lock" in DOCKERFILE
    assert "pip install --no-cache-dir -r /tmp/requirements.lock" in DOCKERFILE
    for source in re.findall(r"^COPY (\S+(?: \S+)*) \S+$", DOCKERFILE, flags=re.M):
        for path in source.split():
            assert (ROOT / path).exists(), path
    assert re.findall(r"^USER (\S+)$", DOCKERFILE, flags=re.M)[-1] == str(CONFIG["singleuser"].get("uid", 1000))
    assert re.search(r"^jupyterhub==", (ROOT / "requirements.lock").read_text(), flags=re.M)  # the cmd


def test_the_kit_the_image_installs_carries_the_labs(tmp_path):
    """The Dockerfile's `pip install --no-deps /tmp/kit`, from the same files it copies,
    as a wheel: the labs land where labapp.runtime.notebooks looks for them."""
    kit = tmp_path / "kit"
    kit.mkdir()
    for line in re.findall(r"^COPY (.+) /tmp/kit/?(\S*)$", DOCKERFILE, flags=re.M):
        sources, target = line[0].split(), line[1]
        for source in sources:
            dest = kit / (target or source)
            if (ROOT / source).is_dir():
                subprocess.run(["cp", "-r", str(ROOT / source), str(dest)], check=True)
            else:
                dest.write_bytes((ROOT / source).read_bytes())
    run = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                          "--no-build-isolation", "-w", str(tmp_path / "dist"), str(kit)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("labapp-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    data = [n for n in names if ".data/data/share/labapp/notebooks/" in n]
    assert any(n.endswith("/notebooks/00-Welcome.ipynb") for n in data), names
    assert any(n.endswith("/notebooks/solutions/01-First-Migration.ipynb") for n in data), data
    assert "labapp/runtime/notebooks.py" in names
