"""The browser exam page end to end in headless Chromium (Debian's chromium, driven by Playwright).

A candidate gets a launch code from the administrator, opens the page (exam facts and rules),
enters the code and answers one item at a time; a reload, and closing the page and reopening it
with the code, resume the same item; the result page shows the decision, the scaled score and the
performance by content area, the same as the service stored. A short time limit runs out (the
page says time is up; the report is consistent); a proctor's pause stops the clock on the page.
axe-core finds no serious or critical accessibility violation on any screen. Screenshots are
saved in the test's temporary folder.
"""

import math
import os
import re
import shutil
from importlib import resources

import pytest

from tests.service.loadtest import ServerProcess

from .conftest import ADMIN_KEY, missing
from .helpers import API
from .test_exam_day import _design

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("ADAPTIVE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
ADMIN = {"X-API-Key": ADMIN_KEY}


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        missing("Chromium (Debian package chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def server(tmp_path, cmcs_pool):
    """``server(design_changes=None)``: ``adaptive serve`` with launch codes required (no practice mode)."""
    made = []

    def start(**changes):
        (tmp_path / "design.json").write_text(_design(cmcs_pool, **changes).model_dump_json())
        s = ServerProcess(f"sqlite:///{tmp_path / f's{len(made)}.db'}", bank=cmcs_pool, admin_key=ADMIN_KEY,
                          log_path=tmp_path / "server.log", practice=False,
                          extra=("--design", str(tmp_path / "design.json"))).start()
        made.append(s)
        return s

    yield start
    for s in made:
        s.stop()


def _code(server, **body) -> str:
    import httpx

    r = httpx.post(server.url + API + "/admin/eligibilities", json={"candidate_id": "C-100", **body}, headers=ADMIN)
    assert r.status_code == 201, r.text
    return r.json()["launch_code"]


def _axe(page, where: str) -> None:
    """No serious or critical axe-core violation on the page as it is now."""
    source = resources.files("axe_playwright_python").joinpath("axe.min.js").read_text(encoding="utf-8")
    page.evaluate(source)
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    bad = [(v["id"], v["impact"], v["help"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]
           if v["impact"] in ("serious", "critical")]
    assert bad == [], (where, bad)


def _launch(page, server, code):
    page.goto(server.url + "/")
    page.wait_for_selector("#facts dt")
    page.fill("#code", code)
    page.click("#launch")
    page.wait_for_selector("#question:not([hidden])")


def _shown_key(page, bank) -> str:
    stem = page.text_content("#stem")
    item = next(i for i in bank.items if i.content.stem == stem)
    key_text = item.content.options[ord(item.content.key) - ord("A")]
    labels = page.locator("#options label")
    for k in range(labels.count()):
        text = labels.nth(k).text_content().strip()
        if text.split(". ", 1)[1] == key_text:
            return text.split(".", 1)[0]
    raise AssertionError(f"the key of {item.id} is not among the options shown")


def _answer(page, letter, answered):
    page.check(f"#options input[value='{letter}']")
    page.click("#submit")
    page.wait_for_function(
        "([n]) => !document.getElementById('result').hidden || "
        "document.getElementById('progress').textContent === 'Question ' + (n + 1)", arg=[answered + 1])


def test_a_candidate_takes_the_cmcs_exam_from_a_launch_code(browser, server, cmcs_bank, tmp_path):
    import httpx

    srv = server()
    code = _code(srv)
    context = browser.new_context()
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(srv.url + "/")
    page.wait_for_selector("#facts dt")
    facts = page.text_content("#facts")
    assert "CMCS adaptive exam" in facts and "35 to 65" in facts and "2 h 0 min" in facts
    assert page.locator("#practice-box").is_hidden()  # no open starts without practice mode
    _axe(page, "welcome")
    page.screenshot(path=str(tmp_path / "welcome.png"), full_page=True)
    page.fill("#code", "NOT-A-CODE")
    page.click("#launch")
    page.wait_for_function("() => document.getElementById('error').textContent.includes('not recognized')")
    page.fill("#code", code)
    page.click("#launch")
    page.wait_for_selector("#question:not([hidden])")
    assert page.title() == "CMCS adaptive exam"
    assert re.fullmatch(r"1:59:5\d left|2:00:00 left", page.text_content("#timer").strip()), page.text_content("#timer")
    _axe(page, "question")
    page.screenshot(path=str(tmp_path / "question.png"), full_page=True)
    answered = 0
    while page.locator("#question").is_visible():
        assert page.text_content("#progress") == f"Question {answered + 1}"
        if answered < 35:
            assert f"{answered} of at least 35 questions answered" in page.text_content("#progress-note")
        stem = page.text_content("#stem")
        if answered == 5:  # a reload resumes the same item, title and all
            page.reload()
            page.wait_for_selector("#question:not([hidden])")
            assert page.text_content("#stem") == stem and page.title() == "CMCS adaptive exam"
        if answered == 9:  # the tab is closed; a new one with the same code continues the same item
            shown = page.locator("#options label").all_text_contents()
            page.close()
            context.close()
            context = browser.new_context()
            page = context.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            _launch(page, srv, code)
            assert page.text_content("#stem") == stem
            assert page.locator("#options label").all_text_contents() == shown  # the same option order
        assert page.locator("#submit").is_disabled()  # nothing chosen yet
        key = _shown_key(page, cmcs_bank)
        _answer(page, key if answered % 3 else "A", answered)
        answered += 1
    assert page.locator("#result").is_visible()
    decision = page.text_content("#decision")
    facts = page.text_content("#result-facts")
    assert re.fullmatch(r"Result: (PASS|FAIL)", decision)
    assert "passing score 300" in facts and "Attempt1" in facts and f"Questions answered{answered}" in facts
    rows = page.locator("#domains tbody tr")
    assert rows.count() == 6
    assert "Probability" not in page.inner_text("main") and "theta" not in page.inner_text("main").lower()
    sessions = httpx.get(srv.url + API + "/admin/sessions", headers=ADMIN).json()
    assert len(sessions) == 1
    stored = sessions[0]["result"]
    assert stored["n_answered"] == answered
    assert decision.endswith(stored["decision"].upper())
    assert f"Scaled score{round(stored['scaled_score'])} " in facts
    levels = {"above": "Above the standard", "near": "Near the standard", "below": "Below the standard",
              "too few items": "Too few questions to judge"}
    half_up = lambda v: int(math.floor(v + 0.5))  # noqa: E731 -- JavaScript's Math.round
    for k, d in enumerate(stored["domains"]):
        cells = rows.nth(k).locator("td").all_text_contents()
        # the bundled pool has a subscore model: each area's scaled subscore ± SE and its reliability
        assert cells == [d["domain"], str(d["n_items"]), levels[d["level"]],
                         f"{half_up(d['scaled_subscore'])} ± {half_up(d['scaled_subscore_se'])}",
                         f"{d['reliability']:.2f}"]
    assert "A subscore estimates your skill" in page.inner_text("#result")
    _axe(page, "result")
    page.screenshot(path=str(tmp_path / "result.png"), full_page=True)
    # the same code cannot start a second attempt
    page.goto(srv.url + "/")
    page.evaluate("sessionStorage.clear()")
    page.goto(srv.url + "/")
    page.wait_for_selector("#facts dt")
    page.fill("#code", code)
    page.click("#launch")
    page.wait_for_function("() => document.getElementById('error').textContent.includes('good for one attempt')")
    assert errors == []
    context.close()


def test_the_time_runs_out_on_the_page_and_the_report_agrees(browser, server, cmcs_bank, tmp_path):
    srv = server(**{"stopping.time_limit": 12.0})
    page = browser.new_page()
    _launch(page, srv, _code(srv))
    _answer(page, _shown_key(page, cmcs_bank), 0)  # one answer in time, then the candidate waits
    page.wait_for_selector("#result:not([hidden])", timeout=30_000)
    assert page.locator("#time-up").is_visible()
    decision = page.text_content("#decision")
    facts = page.text_content("#result-facts")
    assert decision == "Result: FAIL"  # the minimum length was not reached
    score = int(re.search(r"Scaled score(\d+)", facts).group(1))
    assert score < 300  # a failing result never shows a passing score
    _axe(page, "time up")
    page.screenshot(path=str(tmp_path / "time-up.png"), full_page=True)
    page.close()


def test_a_proctor_pause_stops_the_clock_on_the_page(browser, server, cmcs_bank, tmp_path):
    import httpx

    srv = server()
    page = browser.new_page()
    _launch(page, srv, _code(srv))
    sid = page.evaluate("JSON.parse(sessionStorage.getItem('adaptive-session')).session_id")
    r = httpx.post(f"{srv.url}{API}/admin/sessions/{sid}/pause", json={"reason": "fire alarm"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    page.wait_for_selector("#paused:not([hidden])", timeout=15_000)
    frozen = page.text_content("#timer")
    page.wait_for_timeout(2500)
    assert page.text_content("#timer") == frozen  # the clock stopped
    _axe(page, "paused")
    page.screenshot(path=str(tmp_path / "paused.png"), full_page=True)
    left = httpx.get(f"{srv.url}{API}/admin/sessions/{sid}/audit", headers=ADMIN).json()["events"][-1]["detail"][
        "time_remaining_seconds"]
    r = httpx.post(f"{srv.url}{API}/admin/sessions/{sid}/resume", json={}, headers=ADMIN)
    assert r.status_code == 200, r.text
    page.wait_for_selector("#question:not([hidden])", timeout=15_000)
    after = r.json()["time_remaining_seconds"]
    assert after == pytest.approx(left, abs=0.5)  # the paused seconds were not charged
    page.close()


def test_the_api_documentation_renders_offline(browser, server, tmp_path):
    srv = server()
    page = browser.new_page()
    outside = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(srv.url) else None)
    page.goto(srv.url + "/docs")
    page.wait_for_selector(".opblock", timeout=30_000)  # Swagger UI drew the operations
    assert page.locator(".opblock").count() > 10
    assert outside == []  # nothing fetched from outside the server
    page.screenshot(path=str(tmp_path / "docs.png"))
    page.close()


def test_the_exam_works_from_the_keyboard_alone(browser, server, cmcs_bank, tmp_path):
    """Tab to the code field, type, Enter; then each question: Tab into the options, arrow keys to choose,
    Tab to the button, Enter. Focus lands on the question heading after each answer (screen readers hear it)."""
    srv = server(**{"min_length": 3, "max_length": 3, "pretest_items": 0, "stopping.classification": None})
    page = browser.new_page()
    page.goto(srv.url + "/")
    page.wait_for_selector("#facts dt")
    for _ in range(10):  # Tab until the code field has the focus
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "code":
            break
    assert page.evaluate("document.activeElement.id") == "code"
    page.keyboard.type(_code(srv))
    page.keyboard.press("Enter")
    page.wait_for_selector("#question:not([hidden])")
    for k in range(3):
        assert page.evaluate("document.activeElement.id") == "progress"  # focus on "Question k"
        assert page.text_content("#progress") == f"Question {k + 1}"
        page.keyboard.press("Tab")  # into the radio group
        assert page.evaluate("document.activeElement.name") == "choice"
        page.keyboard.press("ArrowDown")  # choose the next option
        assert page.evaluate("document.activeElement.checked") is True
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "submit"
        page.keyboard.press("Enter")
        page.wait_for_function("([n]) => !document.getElementById('result').hidden || "
                               "document.getElementById('progress').textContent === 'Question ' + (n + 1)",
                               arg=[k + 1])
    page.wait_for_selector("#result:not([hidden])")
    assert page.evaluate("document.activeElement.id") == "decision"
    page.emulate_media(media="print")  # the printed report: no buttons, the table whole
    assert page.locator("#print").is_hidden()
    page.screenshot(path=str(tmp_path / "printed-report.png"), full_page=True)
    page.close()
