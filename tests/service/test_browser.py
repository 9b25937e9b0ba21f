"""The browser exam page end to end in headless Chromium (Debian's chromium, driven by Playwright).

A candidate opens the page, starts the CMCS exam, answers one item at a time (the progress line
counts up), and sees the final result; the page's result must be the one the API stores. A
reload in the middle resumes the same item.
"""

import os
import re
import shutil

import pytest

from tests.service.loadtest import ServerProcess

from .conftest import ADMIN_KEY, missing
from .helpers import API

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("ADAPTIVE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        missing("Chromium (Debian package chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


def test_a_candidate_takes_the_cmcs_exam_in_the_browser(browser, cmcs_pool, cmcs_bank, tmp_path):
    import httpx

    server = ServerProcess(f"sqlite:///{tmp_path / 's.db'}", bank=cmcs_pool, admin_key=ADMIN_KEY,
                           log_path=tmp_path / "server.log").start()
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(server.url + "/")
        assert page.locator("#intro").is_visible()
        page.click("#start")
        page.wait_for_selector("#question:not([hidden])")
        assert page.text_content("#title") == "CMCS adaptive exam"
        answered = 0
        reloaded = False
        while page.locator("#question").is_visible():
            progress = page.text_content("#progress")
            assert progress.startswith(f"Question {answered + 1} "), progress
            assert "at most 65" in progress
            stem = page.text_content("#stem")
            item = next(i for i in cmcs_bank.items if i.content.stem == stem)
            options = page.locator("#options label")
            assert options.count() == len(item.content.options)
            if answered == 7 and not reloaded:  # a reload mid-exam resumes the same item
                page.reload()
                page.wait_for_selector("#question:not([hidden])")
                assert page.text_content("#stem") == stem
                reloaded = True
            assert page.locator("#submit").is_disabled()  # nothing chosen yet
            pick = item.content.key if answered % 3 else "A"
            page.check(f"#options input[value='{pick}']")
            page.click("#submit")
            answered += 1
            page.wait_for_function(
                "([n]) => !document.getElementById('result').hidden || "
                "document.getElementById('progress').textContent.startsWith('Question ' + (n + 1) + ' ')",
                arg=[answered])
        assert page.locator("#result").is_visible()
        decision = page.text_content("#decision")
        score = page.text_content("#score")
        detail = page.text_content("#detail")
        assert re.fullmatch(r"Result: (PASS|FAIL)", decision)
        assert "passing score 300" in score
        assert f"Questions answered: {answered}." in detail
        # the page shows what the service stored
        sessions = httpx.get(server.url + API + "/admin/sessions", headers={"X-API-Key": ADMIN_KEY}).json()
        assert len(sessions) == 1
        stored = sessions[0]["result"]
        assert stored["n_answered"] == answered
        assert decision.endswith(stored["decision"].upper())
        assert score.startswith(f"Scaled score: {round(stored['scaled_score'])} ")
        assert errors == []
        page.screenshot(path=str(tmp_path / "result.png"))
    finally:
        page.close()
        server.stop()
