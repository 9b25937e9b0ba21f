"""Exam day: launch codes and eligibility, retakes, the clock the server enforces, proctor controls,
shuffled options, rate limits and the candidate's score report (issue 15).

Time is driven by a fake clock, so every expiry, pause and outage is exact and nothing sleeps.
"""

import json

import numpy as np
import pytest

from adaptive.cat import ExamDesign
from adaptive.service import Delivery, open_store
from adaptive.service.ratelimit import RateLimits

from .conftest import ADMIN_KEY
from .helpers import API, keyed_choice

ADMIN = {"X-API-Key": ADMIN_KEY}
DAY = 86400.0
#: a shorter CMCS exam whose pool serves three attempts without repeating an item (the bundled 30-60 item exam
#: leaves too few CPT, Documentation and Compliance items for a second attempt)
SHORT = {"min_length": 10, "max_length": 20, "pretest_items": 2}


class FakeClock:
    def __init__(self, t=1_800_000_000.0):
        self.t = t

    def __call__(self):
        return self.t

    def advance(self, seconds):
        self.t += seconds


def _design(cmcs_pool, **changes) -> ExamDesign:
    d = json.loads((cmcs_pool / "design.json").read_text())
    for path, value in changes.items():
        node = d
        *parents, leaf = path.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return ExamDesign.model_validate(d)


@pytest.fixture
def desk(tmp_path, cmcs_pool, cmcs_bank):
    """``desk(**design changes)``: a Delivery on a fresh SQLite file with a fake clock, and that clock."""
    made = []

    def make(practice=False, **changes):
        clock = FakeClock()
        d = Delivery(open_store(f"sqlite:///{tmp_path / f'exam{len(made)}.db'}"), clock=clock, practice=practice)
        d.add_version(cmcs_bank, _design(cmcs_pool, **changes))
        made.append(d)
        return d, clock

    yield make
    for d in made:
        d.store.close()


def _answer(d, s, bank, correct=True):
    item = s["next"] if "next" in s else s["item"]
    return d.answer(s["session_id"], s["token"], item_id=item["item_id"], seq=item["seq"],
                    choice=keyed_choice(bank, item, correct))


def _finish(d, s, bank, rng=None):
    ack = _answer(d, s, bank)
    while not ack["finished"]:
        ack = _answer(d, {**s, "next": ack["next"]}, bank, correct=True if rng is None else bool(rng.random() < 0.6))
    return ack


# ---------------------------------------------------------------------------------------------- launch codes
def test_a_code_starts_one_attempt_resumes_it_and_is_then_used_up(desk, cmcs_bank):
    d, clock = desk()
    e = d.register("C-1", time_multiplier=1.5)
    assert e["attempts_allowed"] == 1 and e["code_attempt"] == 1  # the bundled exam's pool allows one attempt
    s = d.launch(e["launch_code"].lower().replace("-", " "))  # typed in lower case with spaces: the same code
    assert s["attempt"] == 1 and s["resumed"] is False
    assert s["exam"]["time_limit_seconds"] == pytest.approx(7200 * 1.5)  # the accommodation
    clock.advance(30)
    again = d.launch(e["launch_code"])  # the tab was closed: the same attempt, the same item, a new token
    assert again["session_id"] == s["session_id"] and again["resumed"] is True
    assert again["item"]["item_id"] == s["item"]["item_id"]
    assert [o["text"] for o in again["item"]["options"]] == [o["text"] for o in s["item"]["options"]]
    assert again["item"]["time_remaining_seconds"] == pytest.approx(7200 * 1.5 - 30)
    with pytest.raises(Exception, match="not found, or the token"):
        d.current(s["session_id"], s["token"])  # the old token stopped working
    _finish(d, again, cmcs_bank)
    with pytest.raises(Exception, match="good for one attempt") as err:
        d.launch(e["launch_code"])
    assert err.value.status == 409
    with pytest.raises(Exception, match="all 1 attempts have been used"):
        d.issue_code(e["eligibility_id"])
    assert len(d.eligibility(e["eligibility_id"])["attempts"]) == 1


def test_unknown_replaced_early_late_and_used_up_codes_are_refused_with_the_reason(desk, cmcs_bank):
    d, clock = desk(**SHORT, **{"retakes.max_attempts": 2, "retakes.wait_days": 14.0})
    with pytest.raises(Exception, match="launch code not recognized") as err:
        d.launch("AAAA-BBBB-CCCC-DDDD")
    assert err.value.status == 404
    later = d.register("C-2", window_start=clock() + DAY, window_days=10)
    with pytest.raises(Exception, match="window opens at") as err:
        d.launch(later["launch_code"])
    assert err.value.status == 403
    clock.advance(12 * DAY)
    with pytest.raises(Exception, match="window closed at"):
        d.launch(later["launch_code"])
    e = d.register("C-3", window_days=100)
    lost = d.issue_code(e["eligibility_id"])  # the candidate lost the first code: it is replaced
    with pytest.raises(Exception, match="replaced by a newer one") as err:
        d.launch(e["launch_code"])
    assert err.value.status == 403
    s = d.launch(lost["launch_code"])
    _finish(d, s, cmcs_bank)
    # a retake within the waiting period is refused with the date it becomes possible
    with pytest.raises(Exception, match="retake waiting period.*may start from") as err:
        d.issue_code(e["eligibility_id"])
    assert err.value.status == 403
    clock.advance(14 * DAY + 1)
    second = d.issue_code(e["eligibility_id"])
    assert second["code_attempt"] == 2
    s2 = d.launch(second["launch_code"])
    assert s2["attempt"] == 2
    _finish(d, s2, cmcs_bank)
    clock.advance(15 * DAY)
    with pytest.raises(Exception, match="all 2 attempts have been used"):
        d.issue_code(e["eligibility_id"])
    with pytest.raises(Exception, match="allows 1 to 2 attempts"):
        d.register("C-4", attempts=3)


def test_open_starts_exist_only_in_practice_mode(make_client):
    client = make_client("sqlite:///:memory:", practice=False)
    r = client.post(f"{API}/sessions", json={})
    assert r.status_code == 403 and "launch code" in r.json()["detail"]
    facts = client.get(f"{API}/exam").json()
    assert facts["practice"] is False and facts["time_limit_seconds"] == 7200 and facts["rules"]


def test_admin_api_registers_issues_codes_and_the_candidate_launches(make_client, cmcs_bank):
    client = make_client("sqlite:///:memory:", practice=False)
    r = client.post(f"{API}/admin/eligibilities", json={"candidate_id": "C-9", "time_multiplier": 1.25},
                    headers=ADMIN)
    assert r.status_code == 201, r.text
    e = r.json()
    assert client.post(f"{API}/admin/eligibilities", json={"candidate_id": "C-9"}).status_code == 401
    s = client.post(f"{API}/launch", json={"code": e["launch_code"]})
    assert s.status_code == 200, s.text
    s = s.json()
    assert s["exam"]["time_limit_seconds"] == 9000
    # two launches with one code: one attempt, never two
    again = client.post(f"{API}/launch", json={"code": e["launch_code"]}).json()
    assert again["session_id"] == s["session_id"]
    listed = client.get(f"{API}/admin/eligibilities", params={"candidate_id": "C-9"}, headers=ADMIN).json()
    assert listed[0]["attempts_used"] == 1
    assert client.post(f"{API}/admin/eligibilities/{e['eligibility_id']}/codes", headers=ADMIN).json()[
        "resumes_session"] == s["session_id"]


def test_starts_and_answers_over_the_rate_limit_get_429_with_retry_after(make_client, cmcs_bank):
    client = make_client("sqlite:///:memory:", rate_limits=RateLimits(start_per_client=(3, 60),
                                                                       answer_per_session=(2, 60)))
    codes = [client.post(f"{API}/sessions", json={}).status_code for _ in range(4)]
    assert codes == [201, 201, 201, 429]
    r = client.post(f"{API}/sessions", json={})
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 60
    assert "too many starts" in r.json()["detail"]
    bad = client.post(f"{API}/launch", json={"code": "AAAA-AAAA-AAAA-AAAA"})
    assert bad.status_code == 429  # guessing codes counts against the same address


# ---------------------------------------------------------------------------------------------- the clock
def test_time_runs_out_no_item_is_served_a_late_answer_is_refused_and_audited(desk, cmcs_bank):
    d, clock = desk(practice=True, **{"stopping.time_limit": 600.0, "stopping.on_timeout": "score"})
    s = d.start()
    clock.advance(100)
    ack = _answer(d, s, cmcs_bank)
    assert ack["next"]["time_remaining_seconds"] == pytest.approx(500)
    clock.advance(501)
    item = ack["next"]
    with pytest.raises(Exception, match="time expired 1 s before this answer") as err:
        d.answer(s["session_id"], s["token"], item_id=item["item_id"], seq=item["seq"], choice="A")
    assert err.value.status == 409
    cur = d.current(s["session_id"], s["token"])
    assert cur["finished"] is True and cur["item"] is None and cur["time_expired"] is True
    res = d.result(s["session_id"], s["token"])
    assert res["stopped_by"] == "time_limit" and res["n_answered"] == 1 and res["time_expired"] is True
    assert res["decision"] == "fail" and res["scaled_score"] < 300  # min length not reached: fail, consistently
    audit = d.audit(s["session_id"])
    kinds = [e["kind"] for e in audit["events"]]
    assert "late_answer" in kinds and "expired" in kinds
    assert len(audit["answers"]) == 1  # the late answer was not stored
    assert d.replay(s["session_id"]).result().decision == "fail"


@pytest.mark.parametrize("rule, expected", [("fail", "fail"), ("no_decision", "no decision")])
def test_run_out_of_time_rules_decide_and_the_score_agrees(desk, cmcs_bank, rule, expected):
    d, clock = desk(practice=True, **{"stopping.time_limit": 60.0, "stopping.on_timeout": rule})
    s = d.start()
    clock.advance(61)
    res = d.result(s["session_id"], s["token"])  # asking for the result after expiry ends the exam
    assert res["decision"] == expected
    assert res["scaled_score"] is None if expected == "no decision" else res["scaled_score"] < 300


def test_a_proctor_pause_stops_the_clock_and_blocks_answers(desk, cmcs_bank):
    d, clock = desk(practice=True, **{"stopping.time_limit": 600.0})
    s = d.start()
    clock.advance(100)
    d.pause(s["session_id"], "fire alarm")
    view = d.current(s["session_id"], s["token"])
    assert view["paused"] is True and view["item"] is None and view["time_remaining_seconds"] == pytest.approx(500)
    clock.advance(3600)  # an hour paused is not charged
    with pytest.raises(Exception, match="proctor paused") as err:
        _answer(d, s, cmcs_bank)
    assert err.value.status == 409
    d.resume(s["session_id"])
    cur = d.current(s["session_id"], s["token"])
    assert cur["item"]["item_id"] == s["item"]["item_id"]
    assert cur["item"]["time_remaining_seconds"] == pytest.approx(500)
    d.extend(s["session_id"], 120, "proctor's decision")
    assert d.current(s["session_id"], s["token"])["item"]["time_remaining_seconds"] == pytest.approx(620)
    kinds = [e["kind"] for e in d.audit(s["session_id"])["events"]]
    assert {"paused", "resumed_by_proctor", "extended", "refused"} <= set(kinds)
    ack = _answer(d, {**s, "item": cur["item"]}, cmcs_bank)
    assert ack["accepted"]
    assert d.replay(s["session_id"]).time_limit == pytest.approx(720)


def test_a_server_outage_is_not_charged(desk, cmcs_bank, tmp_path):
    d, clock = desk(practice=True, **{"stopping.time_limit": 600.0})
    s = d.start()
    d.beat()
    clock.advance(100)
    d.beat()
    clock.advance(4)  # the last heartbeat, then the server dies; 20 minutes later it restarts
    clock.advance(1200)
    restarted = Delivery(d.store, clock=clock, practice=True)
    credited = restarted.recover_outage()
    assert credited == pytest.approx(1204)
    left = restarted.current(s["session_id"], s["token"])["item"]["time_remaining_seconds"]
    assert left == pytest.approx(500)  # charged: the 100 s up to the last heartbeat only
    assert restarted.recover_outage() == 0.0  # once
    assert any(e["kind"] == "outage_credit" for e in restarted.audit(s["session_id"])["events"])


def test_a_voided_session_ends_without_a_result(desk, cmcs_bank):
    d, _ = desk(practice=True)
    s = d.start()
    d.void(s["session_id"], "notes brought into the room")
    cur = d.current(s["session_id"], s["token"])
    assert cur["finished"] and cur["voided"] and cur["void_reason"] == "notes brought into the room"
    with pytest.raises(Exception, match="voided"):
        _answer(d, s, cmcs_bank)
    res = d.result(s["session_id"], s["token"])
    assert res["voided"] is True and res["decision"] is None and res["scaled_score"] is None


# ---------------------------------------------------------------------------------------------- options and retakes
def test_options_are_shuffled_per_candidate_and_stored_as_authored(desk, cmcs_bank):
    d, _ = desk(practice=True)
    orders = set()
    for _ in range(6):
        s = d.start()
        item = s["item"]
        content = cmcs_bank.items[cmcs_bank.index[item["item_id"]]].content
        shown = [o["text"] for o in item["options"]]
        assert sorted(shown) == sorted(content.options)
        orders.add((item["item_id"], tuple(shown)))
        choice = keyed_choice(cmcs_bank, item, True)
        d.answer(s["session_id"], s["token"], item_id=item["item_id"], seq=1, choice=choice)
        trail = d.audit(s["session_id"])["answers"][0]
        chosen_text = shown[ord(choice) - ord("A")]
        assert content.options[trail["choice"]] == chosen_text and trail["response"] == 1
        assert [content.options[k] for k in trail["options_order"]] == shown
        export = [r for r in d.export_responses() if r["person"] == s["session_id"]][0]
        assert export["option"] == content.key  # exports carry the authored option
    assert len(orders) > 1


def test_retakes_never_repeat_an_item_from_an_earlier_attempt(desk, cmcs_bank):
    d, clock = desk(**SHORT, **{"retakes.max_attempts": 3, "retakes.wait_days": 1.0})
    rng = np.random.default_rng(15)
    for c in range(8):
        e = d.register(f"R-{c}")
        seen: set[str] = set()
        for attempt in range(3):
            code = e["launch_code"] if attempt == 0 else d.issue_code(e["eligibility_id"])["launch_code"]
            s = d.launch(code)
            _finish(d, s, cmcs_bank, rng)
            items = {a["item_id"] for a in d.audit(s["session_id"])["answers"]}
            assert not items & seen, (c, attempt, items & seen)
            seen |= items
            clock.advance(DAY + 1)


def test_a_retake_the_pool_cannot_serve_is_refused_with_the_reason(desk, cmcs_bank):
    d, clock = desk(**{"retakes.max_attempts": 5, "retakes.wait_days": 0.0})  # the bundled 30-60 item exam
    e = d.register("R-X")
    codes = [e["launch_code"]]
    with pytest.raises(Exception, match="cannot start") as err:
        for attempt in range(5):
            s = d.launch(codes[-1])
            _finish(d, s, cmcs_bank, np.random.default_rng(attempt))
            codes.append(d.issue_code(e["eligibility_id"])["launch_code"])
    assert err.value.status == 409 and "operational items" in str(err.value)


# ---------------------------------------------------------------------------------------------- the score report
def test_the_score_report_has_domains_and_no_theta_unless_the_design_allows(desk, cmcs_bank):
    d, _ = desk(practice=True)
    s = d.start()
    _finish(d, s, cmcs_bank, np.random.default_rng(3))
    res = d.result(s["session_id"], s["token"])
    assert {"decision", "scaled_score", "exam", "date", "attempt", "domains"} <= set(res)
    assert not {"theta", "se", "p_pass"} & set(res)
    assert [x["domain"] for x in res["domains"]] == ["ICD-10-CM", "CPT", "HCPCS Level II", "Modifiers",
                                                     "Documentation", "Compliance"]
    # the bundled pool has a subscore model: each domain's scaled subscore, its SE and reliability, no θ
    assert all(set(x) == {"domain", "n_items", "level", "scaled_subscore", "scaled_subscore_se", "reliability"}
               for x in res["domains"])
    assert all(x["level"] in {"above", "near", "below", "too few items"} for x in res["domains"])
    assert all(0 < x["reliability"] < 1 and 100 <= x["scaled_subscore"] <= 400 for x in res["domains"])
    d2, _ = desk(practice=True, **{"report.show_theta": True, "report.show_probability": True})
    s = d2.start()
    _finish(d2, s, cmcs_bank, np.random.default_rng(3))
    res = d2.result(s["session_id"], s["token"])
    assert {"theta", "se", "p_pass"} <= set(res)
    assert all({"theta", "se", "subscore", "subscore_se"} <= set(x) for x in res["domains"])


def test_one_code_launched_at_once_from_many_devices_runs_one_attempt(desk):
    """Eight simultaneous launches of one code (threads, one SQLite file): one session is created; every other
    launch resumes it or is told the code was just used (409), never a second attempt."""
    from concurrent.futures import ThreadPoolExecutor

    d, _ = desk()
    code = d.register("C-RACE")["launch_code"]

    def go(_):
        try:
            return d.launch(code)["session_id"]
        except Exception as err:  # noqa: BLE001
            assert getattr(err, "status", None) == 409, err
            return None

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(go, range(8)))
    assert len({i for i in ids if i}) == 1
    assert len(d.sessions()) == 1
