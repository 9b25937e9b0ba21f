"""The live MCAT session: audit entries, the time limit, and storing and resuming (replay with checks)."""

import json

import numpy as np
import pytest

from adaptive.cat.multidim import MultidimDesign, run_mcat
from adaptive.cat.multidim_session import MultidimSession
from adaptive.exceptions import SessionStateError

DESIGN = MultidimDesign(rule="d_rule", min_items=5, max_items=15, se_target=0.4, randomesque=2,
                        pretest=("C299", "C300"), pretest_count=1)


def _answer(session, answers, bank, seconds=30.0):
    item = session.next_item()
    return session.answer(item, int(answers[bank.item_ids.index(item)]), seconds) if item else None


def test_the_audit_holds_every_step_and_the_stored_session_resumes_where_it_stopped(mcat_bank, mcat_answers):
    live = MultidimSession(mcat_bank, DESIGN, seed=17, session_id="S-1")
    for _ in range(6):
        entry = _answer(live, mcat_answers[0], mcat_bank)
    assert [e["step"] for e in live.audit] == list(range(1, 7)) and entry["theta_after"] == live.theta.tolist()
    assert sum(e["pretest"] for e in live.audit) <= 1
    scored = [e for e in live.audit if not e["pretest"]]
    assert all(e["theta_before"] != e["theta_after"] for e in scored)
    assert all(e["theta_before"] == e["theta_after"] for e in live.audit if e["pretest"])  # unscored
    text = live.to_json(key="k")
    resumed = MultidimSession.from_json(text, mcat_bank, DESIGN, key="k")
    assert resumed.items == live.items and resumed.next_item() == live.next_item()
    np.testing.assert_array_equal(resumed.theta, live.theta)
    # both finish the same test
    while live.next_item() is not None:
        _answer(live, mcat_answers[0], mcat_bank)
        _answer(resumed, mcat_answers[0], mcat_bank)
    assert resumed.finished and resumed.items == live.items and resumed.stop_reason == live.stop_reason
    # a batch of one with the same seed gives the same scored test
    one = run_mcat(mcat_bank, DESIGN, mcat_answers[:1], rng=17)
    assert tuple(mcat_bank.item_ids[j] for j in one.given[0, :one.n_given[0]]) == live.items


def test_stored_sessions_that_do_not_fit_are_refused(mcat_bank, mcat_answers):
    live = MultidimSession(mcat_bank, DESIGN, seed=5)
    for _ in range(4):
        _answer(live, mcat_answers[1], mcat_bank)
    text = live.to_json(key="k")
    data = json.loads(text)
    tampered = json.dumps({**data, "answers": data["answers"][:-1]})
    with pytest.raises(SessionStateError, match="integrity check"):
        MultidimSession.from_json(tampered, mcat_bank, DESIGN, key="k")
    with pytest.raises(SessionStateError, match="another MCAT design"):
        MultidimSession.from_json(text, mcat_bank, MultidimDesign(max_items=20))
    swapped = [list(a) for a in data["answers"]]
    swapped[1][0] = "C150" if swapped[1][0] != "C150" else "C149"
    with pytest.raises(SessionStateError, match="answer 2: stored item"):
        MultidimSession.from_json(json.dumps({**data, "answers": swapped, "signature": None}), mcat_bank, DESIGN)
    for bad in ("{", "[]", json.dumps({**data, "format": "x"}), json.dumps({**data, "seed": "7"}),
                json.dumps({**data, "seed": -1}), json.dumps({**data, "time_limit": "soon"}),
                json.dumps({**data, "answers": [["C001", 1]]}), json.dumps({**data, "answers": [[1, 2, 3]]})):
        with pytest.raises(SessionStateError):
            MultidimSession.from_json(bad, mcat_bank, DESIGN)
    with pytest.raises(SessionStateError, match="cannot be replayed"):
        MultidimSession(mcat_bank, DESIGN, rng=np.random.default_rng(1)).to_json()


def test_the_time_limit_stops_the_test_and_refused_answers_change_nothing(mcat_bank, mcat_answers):
    live = MultidimSession(mcat_bank, MultidimDesign(max_items=30), seed=2, time_limit=100.0)
    for _ in range(3):
        _answer(live, mcat_answers[2], mcat_bank, seconds=30.0)
    assert not live.finished
    item = live.next_item()
    before = (live.theta.copy(), len(live.audit), live.elapsed)
    for bad in (5, -1, True, 0.5, "1"):
        with pytest.raises(SessionStateError, match="not recorded"):
            live.answer(item, bad, 10.0)
    for secs in (0.0, -3.0, float("nan"), 1e9):
        with pytest.raises(SessionStateError, match="seconds"):
            live.answer(item, 1, secs)
    with pytest.raises(SessionStateError, match="not the item"):
        live.answer("C001" if item != "C001" else "C002", 1, 10.0)
    assert np.array_equal(live.theta, before[0]) and len(live.audit) == before[1] and live.elapsed == before[2]
    _answer(live, mcat_answers[2], mcat_bank, seconds=30.0)               # 120 s >= 100 s
    assert live.finished and live.stop_reason == "time_limit" and len(live.items) == 4
    assert live.next_item() is None
    resumed = MultidimSession.from_json(live.to_json(), mcat_bank, MultidimDesign(max_items=30))
    assert resumed.stop_reason == "time_limit" and resumed.items == live.items


@pytest.mark.parametrize("field, value", [("max_items", "5"), ("randomesque", True), ("se_target", float("nan")),
                                          ("weights", (1, "a")), ("prior_mean", ("a", "b")), ("domains", [1]),
                                          ("exposure", {"C001": "x"}), ("shadow_time_limit", "10")])
def test_designs_with_values_that_are_not_numbers_are_refused_by_field(mcat_bank, field, value):
    from adaptive.exceptions import DesignError

    with pytest.raises(DesignError, match=f"field.*'?{field}'?"):
        MultidimSession(mcat_bank, MultidimDesign(**{field: value}))
