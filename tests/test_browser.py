"""Lab 01 in a real browser: JupyterLab as the README starts it, driven by
Playwright through Debian's Chromium (slow: run under CI, `-m slow`).

The server runs in a sandbox (a copy of labapp/ and notebooks/, imported
first through PYTHONPATH, with an embedded PostgreSQL of its own), so running
lab 01 here never resets the lab01 database and workspace that the normal
suite's nbval of lab 01 uses at the same time.
Screenshot: artifacts/browser-lab01.png. About 15-25 s.
"""
import json
import os
import re
import secrets
import subprocess
import time
from pathlib import Path

import pytest

from helpers import BIN, ROOT, stop_process
from tools import scenarios

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# closed network: no news, no update checks, no extension manager, no toast asking
CLOSED_NETWORK = ["--LabApp.news_url=None",
                  "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                  "--LabApp.extension_manager=readonly"]
OVERRIDES = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false",
                                                    "checkForUpdates": False},
    # every cell in the DOM, so the selectors below see the whole notebook
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install chromium)"),
]
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install playwright==1.65.2)")


def lab_notebook(notebooks):
    """Lab 01's learner copy (with a solutions layout it still is notebooks/01-*)."""
    found = sorted(notebooks.glob("01-*.ipynb"))
    assert found, "no notebooks/01-*.ipynb"
    return found[0].name


@pytest.fixture
def jupyterlab():
    """JupyterLab as `make lab` starts it (+ --no-browser, a token, a free port)."""
    with scenarios.sandbox("lbr-") as (top, env):
        yield from started_jupyterlab(top, env)


def started_jupyterlab(top, env):
    """Start it in the sandbox `top`, yield (its URL, its token, `top`), stop it."""
    home = top / "home"
    settings = top / "settings"
    settings.mkdir(parents=True)
    (settings / "overrides.json").write_text(json.dumps(OVERRIDES))
    (home / "tmp").mkdir(parents=True)
    env.update(HOME=str(home), TMPDIR=str(home / "tmp"), JUPYTER_CONFIG_DIR=str(home / ".jupyter"))
    port, token = scenarios.free_port(), secrets.token_hex(16)
    args = [str(BIN / "jupyter"), "lab", "--notebook-dir=notebooks",
            "--ServerApp.ip=127.0.0.1", "--no-browser", f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
            f"--LabApp.workspaces_dir={top / 'workspaces'}", f"--LabApp.app_settings_dir={settings}",
            *CLOSED_NETWORK]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-root")  # as `make lab` does for root
    log = open(top / "jupyter.log", "w")
    server = subprocess.Popen(args, cwd=top, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while not scenarios.answers(f"{base}/api/status?token={token}"):
            assert server.poll() is None, (top / "jupyter.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "JupyterLab did not answer in 60 s"
            time.sleep(0.2)
        yield base, token, top
    finally:
        stop_process(server)
        log.close()


def test_lab01_runs_in_chromium(jupyterlab):
    base, token, top = jupyterlab
    name = lab_notebook(top / "notebooks")
    code_cells = sum(c["cell_type"] == "code" for c in json.loads(
        (top / "notebooks" / name).read_text(encoding="utf-8"))["cells"])
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(f"{base}/lab/tree/{name}?token={token}")
            # the kernel-ready race: wait for the status bar, not the toolbar
            page.wait_for_function(
                "() => (document.querySelector('#jp-main-statusbar') || {}).innerText"
                "?.includes('Python 3 (ipykernel) | Idle')")
            page.locator("#jp-menu-panel, .lm-MenuBar-content").get_by_text("Run", exact=True).first.click()
            page.locator('#jp-mainmenu-run li[data-command="runmenu:run-all"]').click()
            # done when every code cell shows an execution number ([*]: while running)
            page.wait_for_function(
                """n => {
                    const prompts = [...document.querySelectorAll(
                        '.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')];
                    return prompts.length === n &&
                           prompts.every(p => /^\\[\\d+\\]:$/.test(p.innerText.trim()));
                }""", arg=code_cells, timeout=180_000)
            outputs = page.locator(".jp-Notebook .jp-OutputArea-output")
            text = "\n".join(outputs.all_inner_texts())
            page.locator(".jp-Notebook .jp-OutputArea-output", has_text="Running upgrade  -> 0001") \
                .first.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "browser-lab01.png"))
            tables = page.locator(".jp-Notebook .jp-OutputArea-output table").count()
            errors = page.locator(".jp-Notebook .jp-OutputArea-output[data-mime-type="
                                  "'application/vnd.jupyter.stderr']").all_inner_texts()
        finally:
            browser.close()
    assert "Running upgrade  -> 0001" in text, text[-3000:]
    assert tables >= 1, "no %sql table in the outputs"
    assert not [e for e in errors if "Traceback" in e], errors
    assert re.search(r"Lab lab01: no database yet|Lab lab01: fresh database", text), text[:500]
