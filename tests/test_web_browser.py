"""The CRM's pages in a real browser: Debian's Chromium, driven by Playwright,
against the app served by waitress (labapp.live.appserver) on a fresh database.
Screenshot: artifacts/browser-crm.png. Slow (a browser): `-m slow`, CI runs it."""
import tempfile
import time
import types
from pathlib import Path

import pytest

from helpers import ROOT, SAMPLE, postgres_only
from labapp import db
from labapp.crm import data
from labapp.live import appserver
from labapp.runtime import labs, workspace
from tools import scenarios

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.slow,
    postgres_only,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install chromium)"),
]
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install playwright==1.65.2)")


@pytest.fixture
def server(tmp_path, schema):
    with schema.app_context(), db.engine.begin() as conn:
        data.load(conn, SAMPLE)
    lab = types.SimpleNamespace(workspace=workspace.build(tmp_path / "ws", labs.LabSpec("t", "t", "t")))
    appserver.release(lab, "v1")
    server = appserver.start(lab, "v1")
    yield server
    server.stop()


@pytest.fixture
def home():
    """A short HOME and TMPDIR for Chromium (it writes there; its socket path must be short)."""
    with tempfile.TemporaryDirectory(prefix="crm-", dir="/tmp") as folder:
        yield folder


def test_the_deals_page_and_the_form_in_chromium(server, home):
    env = scenarios.environment(HOME=home, TMPDIR=home)
    ARTIFACTS.mkdir(exist_ok=True)
    started = time.monotonic()
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, env=env)
        try:
            page = browser.new_page()
            page.goto(f"{server.url}/deals")
            assert page.locator("h1").inner_text() == "Deals"
            assert page.locator("#deals tbody tr").count() == 10
            assert "GBP" in page.locator("#deals tbody").inner_text()

            page.click("text=New deal")
            page.fill("input[name=title]", "Browser deal")
            page.fill("input[name=amount]", "a lot")
            page.select_option("select[name=currency]", "EUR")
            page.click("button[type=submit]")
            assert page.locator(".flash").inner_text() == "amount must be a number, not 'a lot'"
            assert page.locator("input[name=title]").input_value() == "Browser deal"

            page.fill("input[name=amount]", "1234.5")
            page.click("button[type=submit]")
            page.wait_for_url(f"{server.url}/deals")
            assert page.locator(".flash").inner_text() == "Deal 11 added."
            first = page.locator("#deals tbody tr").first.inner_text()
            assert "Browser deal" in first and "1,234.50" in first and "EUR" in first
            page.screenshot(path=str(ARTIFACTS / "browser-crm.png"), full_page=True)
        finally:
            browser.close()
    print(f"browser part: {time.monotonic() - started:.1f} s")
    assert (ARTIFACTS / "browser-crm.png").read_bytes()[:4] == b"\x89PNG"
