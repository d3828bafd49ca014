"""Security basics: nothing listens beyond this machine, JupyterLab keeps its
token, and the committed notebooks carry no credentials nor machine paths."""
import json
import os
import re
import shlex
import shutil
import subprocess
import time
import urllib.error
import urllib.request

import psutil
import pytest
import yaml

from helpers import BIN, ROOT, stop_process
from tools import scenarios

NOTEBOOKS = ROOT / "notebooks"


# -- docker-compose.yml -----------------------------------------------------------

def published_ports(service):
    """(host_ip, published, target) of every published port, short or long syntax."""
    for entry in service.get("ports", []) or []:
        if isinstance(entry, dict):  # long syntax
            yield entry.get("host_ip", ""), str(entry.get("published", "")), str(entry["target"])
        else:
            parts = str(entry).rsplit(":", 2)
            if len(parts) == 3:
                yield parts[0].strip("[]"), parts[1], parts[2]
            else:  # "5432" or "55432:5432": every interface
                yield "", parts[0] if len(parts) == 2 else "", parts[-1]


def test_compose_publishes_on_localhost_only():
    compose = ROOT / "docker-compose.yml"
    if not compose.exists():
        pytest.skip("no docker-compose.yml yet")
    services = yaml.safe_load(compose.read_text())["services"]
    ports = [(name, *port) for name, svc in services.items() for port in published_ports(svc)]
    assert ports, "docker-compose.yml publishes nothing"
    wide = [p for p in ports if p[1] != "127.0.0.1"]
    assert not wide, f"ports published beyond 127.0.0.1: {wide}"
    for name, svc in services.items():
        assert svc.get("network_mode") != "host", f"{name} uses the host's network"


# -- JupyterLab as `make lab` starts it --------------------------------------------

def make_lab_command():
    """The `lab:` recipe of the Makefile, with $(BIN) resolved and make's
    conditionals (--allow-root for root, $(JUPYTER_ARGS)) applied."""
    text = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^lab:.*\n((?:\t.*\n)+)", text, re.M).group(1)
    line = re.sub(r"\\\n\s*", " ", recipe).strip()
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    line = re.sub(r"\$\(if \$\(filter 0,\$\(shell id -u\)\),([^)]*)\)", r"\1" if root else "", line)
    line = line.replace("$(JUPYTER_ARGS)", "").replace("$(BIN)", shlex.quote(str(BIN)))
    assert "$(" not in line, f"unresolved make syntax in the lab recipe: {line}"
    return shlex.split(line)


def test_make_lab_recipe_keeps_token_and_binds_localhost():
    args = make_lab_command()
    assert "--ServerApp.ip=127.0.0.1" in args
    joined = " ".join(args)
    for loose in ("token=", "password=", "--ip=0.0.0.0", "ip=*", "disable_check_xsrf",
                  "allow_remote_access", "allow_origin"):
        assert loose not in joined, f"`make lab` passes {loose!r}"


def test_jupyterlab_started_like_make_lab_needs_its_token(tmp_path):
    port = scenarios.free_port()
    home = tmp_path / "home"
    home.mkdir()
    env = scenarios.environment("JUPYTER_TOKEN", HOME=home, JUPYTER_CONFIG_DIR=home / ".jupyter",
                                JUPYTER_RUNTIME_DIR=home / "runtime")
    args = make_lab_command() + ["--no-browser", f"--ServerApp.port={port}",
                                 "--ServerApp.port_retries=0",
                                 f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
                                 "--LabApp.news_url=None", "--LabApp.extension_manager=readonly",
                                 "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    log = tmp_path / "jupyter.log"
    probe = NOTEBOOKS / "workspaces" / f"t_probe_{os.getpid()}"
    probe.mkdir(parents=True)
    (probe / "models.py").write_text("# a probe\n")
    with open(log, "w") as out:
        server = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while not re.search(rf"{base}/lab\?token=\w+", log.read_text()):
            assert server.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "JupyterLab did not start in 60 s"
            time.sleep(0.2)
        token = re.search(rf"{base}/lab\?token=(\w+)", log.read_text()).group(1)
        assert len(token) >= 32
        # jupyter_server logs its URL before its event loop binds the port: wait for an answer
        while not scenarios.answers(f"{base}/api/status?token={token}"):
            assert server.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "JupyterLab did not answer in 60 s"
            time.sleep(0.2)

        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/api/contents", timeout=5)
        refused.value.close()
        assert refused.value.code == 403
        with pytest.raises(urllib.error.HTTPError) as wrong:
            urllib.request.urlopen(f"{base}/api/kernels?token=wrong", timeout=5)
        wrong.value.close()
        assert wrong.value.code == 403
        with urllib.request.urlopen(f"{base}/api/contents?token={token}", timeout=5) as ok:
            assert ok.status == 200
            listing = json.load(ok)
        # the learner's folder: the labs, their solutions, the guide and the cheat sheet, nothing else
        names = sorted(item["name"] for item in listing["content"])
        labs_shown = [n for n in names if re.fullmatch(r"\d\d-[\w-]+\.ipynb", n)]
        assert names == sorted(labs_shown + ["CHEATSHEET.md", "INSTRUCTOR-GUIDE.md", "solutions"]), names
        # ... while a lab's workspace, out of the listing, still opens by its path
        with urllib.request.urlopen(f"{base}/api/contents/workspaces/{probe.name}/models.py"
                                    f"?token={token}", timeout=5) as opened:
            assert json.load(opened)["content"] == "# a probe\n"
        no_redirect = urllib.request.build_opener(NoRedirect)
        with pytest.raises(urllib.error.HTTPError) as page:
            no_redirect.open(f"{base}/lab", timeout=5)
        page.value.close()
        assert page.value.code == 302 and "/login" in page.value.headers["Location"]

        listening = [c for c in psutil.Process(server.pid).net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN]
        assert listening, "JupyterLab listens on nothing?"
        assert {c.laddr.ip for c in listening} == {"127.0.0.1"}, listening
    finally:
        stop_process(server)
        shutil.rmtree(probe, ignore_errors=True)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


# -- stored notebook outputs -------------------------------------------------------

def stored_outputs(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for index, cell in enumerate(nb["cells"]):
        for output in cell.get("outputs", []):
            texts = [output.get("text", ""), output.get("evalue", ""), output.get("traceback", [])]
            for mime, value in output.get("data", {}).items():
                if mime.startswith("text/") or mime.endswith("json"):
                    texts.append(value if isinstance(value, (str, list)) else json.dumps(value))
            for text in texts:
                yield index, "".join(text) if isinstance(text, list) else text


LEAKS = {
    "a password": re.compile(r"password\s*[=:]\s*\S|PGPASSWORD", re.I),
    "credentials in a URL": re.compile(r"://[^/\s:@'\"]+:[^@\s/'\"*]+@"),
    "a machine path": re.compile(r"(?<![\w.])(/work/|/root/|/home/|/tmp/|/Users/|/var/folders/|"
                                 r"[A-Z]:\\\\Users)"),
}

NOTEBOOK_FILES = sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb")) + sorted(
    NOTEBOOKS.glob("solutions/[0-9][0-9]-*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: str(p.relative_to(NOTEBOOKS)))
def test_stored_outputs_hold_no_credentials_nor_machine_paths(path):
    """No stored output shows a password, a user:password@ URL or a path of the
    machine that ran it (tools/build_labs.py scrubs the paths it prints)."""
    found = []
    for index, text in stored_outputs(path):
        for what, leak in LEAKS.items():
            for match in leak.finditer(text):
                start = max(0, match.start() - 40)
                found.append(f"cell {index}: {what}: ...{text[start:match.end() + 40]!r}...")
    assert not found, "\n".join(found)


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: str(p.relative_to(NOTEBOOKS)))
def test_no_run_timestamps_in_cell_metadata(path):
    """nbconvert stamps each executed cell with this machine's clock
    (metadata.execution); tools/build_labs.py strips it."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    stamped = [i for i, cell in enumerate(cells) if "execution" in cell.get("metadata", {})]
    assert stamped == [], f"cells {stamped}: rebuild with tools/build_labs.py"
