"""The status page in a real browser: Debian's chromium driven by Playwright for Python,
showing the active-session count change while a session is open, on a phone-sized
screen.  ``MAILGATE_SCREENSHOT=path`` also saves the screenshot README shows
(docs/status-page.png)."""

from __future__ import annotations

import os
import shutil

import pytest
from playwright import sync_api

from tests.observe.test_metrics import login, start_node
from tests.process.conftest import imap_session

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT = 15_000  # ms: every wait of the browser is bounded


@pytest.mark.requires("chromium")
def test_status_page_shows_a_session_open_and_closed(mailgate_instance, backend, tmp_path):
    mg = mailgate_instance
    port, status = start_node(mg, backend)
    login(port, backend)  # something to show in the tables
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=ARGS, headless=True,
            viewport={"width": 412, "height": 915}, device_scale_factor=1)
        try:
            page = browser.new_page()
            page.goto("http://127.0.0.1:%d/" % status, timeout=TIMEOUT)
            active = page.locator("#active-total")
            sync_api.expect(active).to_have_text("0", timeout=TIMEOUT)
            sync_api.expect(page.locator("#state")).to_have_text("accepting", timeout=TIMEOUT)
            held = imap_session(port)
            try:
                sync_api.expect(active).to_have_text("1", timeout=TIMEOUT)
                rows = page.locator("#active tbody tr")
                sync_api.expect(rows.filter(has_text="imap")).to_contain_text("1", timeout=TIMEOUT)
                sync_api.expect(page.locator("#backends tbody tr")).to_have_count(1)
                sync_api.expect(page.locator("#workers tbody tr")).to_have_count(2)
                # readable on a phone: nothing wider than the screen
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= 412
                shot = tmp_path / "status-page.png"
                page.screenshot(path=str(shot), full_page=True)
                assert shot.stat().st_size > 10_000
                if os.environ.get("MAILGATE_SCREENSHOT"):
                    shutil.copy(shot, os.environ["MAILGATE_SCREENSHOT"])
            finally:
                held.close()
            sync_api.expect(active).to_have_text("0", timeout=TIMEOUT)
        finally:
            browser.close()
