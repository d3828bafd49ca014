"""The zero-install path (README "No install"): a GitHub Codespaces dev container and
Binder, checked offline as far as this machine allows (no Docker, no Codespaces here).

- .devcontainer/devcontainer.json: its keys are the dev container spec's (no npm or PyPI
  package carries the spec's JSON schema, so the schema is not vendored and this test
  checks the structure; the file was validated once against devContainer.base.schema.json
  of github.com/devcontainers/spec, see README), its image's Python is one the kit
  supports, it builds the kit's venv and forwards `make lab`'s port.
- Binder: repo2docker reads environment.yml (conda-forge Python, then requirements.lock and
  the kit) and runs postBuild, which configures the kernels and JupyterLab as
  tools/bootstrap.py and `make lab` do. The slow test runs repo2docker itself (pinned from
  PyPI into a venv of its own with uv, not into the kit's lock) with --no-build, and checks
  the Dockerfile it would build.
"""
import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from helpers import ROOT
from tools import bootstrap

DEVCONTAINER = ROOT / ".devcontainer" / "devcontainer.json"
REPO2DOCKER = "jupyter-repo2docker==2026.4.0"
# the spec's properties of an image-based dev container (devContainer.base.schema.json:
# devContainerCommon, nonComposeBase, imageContainer)
SPEC_KEYS = {"$schema", "name", "image", "features", "overrideFeatureInstallOrder", "secrets",
             "forwardPorts", "portsAttributes", "otherPortsAttributes", "updateRemoteUserUID",
             "containerEnv", "containerUser", "mounts", "init", "privileged", "capAdd",
             "securityOpt", "remoteEnv", "remoteUser", "initializeCommand", "onCreateCommand",
             "updateContentCommand", "postCreateCommand", "postStartCommand", "postAttachCommand",
             "waitFor", "userEnvProbe", "hostRequirements", "customizations", "appPort",
             "runArgs", "shutdownAction", "overrideCommand", "workspaceFolder", "workspaceMount"}
LIFECYCLE = ("initializeCommand", "onCreateCommand", "updateContentCommand", "postCreateCommand",
             "postStartCommand", "postAttachCommand")


def test_the_dev_container_is_the_spec_s_shape_and_builds_the_kit_on_a_supported_python():
    config = json.loads(DEVCONTAINER.read_text())  # plain JSON: no comments, no trailing commas
    assert set(config) <= SPEC_KEYS, sorted(set(config) - SPEC_KEYS)
    image = re.fullmatch(r"mcr\.microsoft\.com/devcontainers/python:\d+-(\d+)\.(\d+)-\w+", config["image"])
    assert image, config["image"]
    assert (int(image.group(1)), int(image.group(2))) in bootstrap.SUPPORTED
    assert config["postCreateCommand"] == "make venv"
    assert config["waitFor"] in LIFECYCLE and config["waitFor"] in config
    assert 8888 in config["forwardPorts"]  # `make lab`'s JupyterLab
    assert {int(port) for port in config["portsAttributes"]} <= set(config["forwardPorts"])
    assert set(config["hostRequirements"]) <= {"cpus", "memory", "storage", "gpu"}
    assert re.fullmatch(r"\d+(gb|mb|tb|kb)", config["hostRequirements"]["memory"])
    assert set(config["customizations"]) <= {"codespaces", "vscode"}


def test_binder_reads_environment_yml_and_post_build_at_the_top():
    """repo2docker reads a binder/ (or .binder/) folder instead of the top when there is one:
    there is none. environment.yml's Python is one the kit supports; postBuild is executable
    and copies files that exist to where tools/bootstrap.py and `make lab` put them."""
    assert not (ROOT / "binder").exists() and not (ROOT / ".binder").exists()
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    assert tuple(map(int, python.split("=")[1].split("."))) in bootstrap.SUPPORTED
    post_build = ROOT / "postBuild"
    assert os.access(post_build, os.X_OK)
    copies = re.findall(r"^cp (\S+) (\S+)$", post_build.read_text(), flags=re.M)
    assert dict(copies) == {
        "tools/ipython_kernel_config.py": '"${KERNEL_PYTHON_PREFIX}/etc/ipython/ipython_kernel_config.py"',
        "tools/jupyter_server_config.py": '"${HOME}/.jupyter/jupyter_server_config.py"'}
    assert all((ROOT / source).is_file() for source, _ in copies)
    run = subprocess.run(["bash", "-n", str(post_build)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


@pytest.mark.slow
def test_repo2docker_would_build_the_conda_environment_and_run_post_build(tmp_path):
    uv, how = bootstrap.find_uv()
    assert uv, how
    venv = tmp_path / "r2d"
    for command in ([uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
                    [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
                     REPO2DOCKER]):
        run = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
    run = subprocess.run([str(venv / "bin" / "repo2docker"), "--no-build", "--debug", str(ROOT)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout + run.stderr
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    assert f"Building conda environment for {python}" in out
    assert 'env update -p ${NB_PYTHON_PREFIX} --file "environment.yml"' in out
    assert "ENV KERNEL_PYTHON_PREFIX=${NB_PYTHON_PREFIX}" in out  # postBuild's copy lands there
    # postBuild after the environment (it copies into it)
    assert out.index("--file \"environment.yml\"") < out.index("RUN ./postBuild")
