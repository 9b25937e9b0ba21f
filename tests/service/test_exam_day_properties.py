"""Property: whatever the design, the time limit and the answers, a candidate's result never contradicts itself
(a failing decision never shows a scaled score at or above the passing score; no decision shows none) and no
candidate-facing body carries θ̂, its SE or P(pass) unless the design's ``report`` allows them."""

import json
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from adaptive.cat import ExamDesign
from adaptive.service import Delivery, open_store

from .helpers import keyed_choice
from .test_exam_day import FakeClock

HIDDEN = {"theta": "show_theta", "se": "show_theta", "p_pass": "show_probability"}


def _keys(node, found):
    if isinstance(node, dict):
        for k, v in node.items():
            found.add(k)
            _keys(v, found)
    elif isinstance(node, list):
        for v in node:
            _keys(v, found)
    return found


@st.composite
def designs(draw, base):
    d = json.loads(json.dumps(base))
    d["min_length"] = draw(st.integers(2, 8))
    d["max_length"] = draw(st.integers(d["min_length"], 12))
    d["pretest_items"] = draw(st.integers(0, min(2, d["min_length"])))
    with_scale = draw(st.booleans())
    if not with_scale:
        d["scale"] = None
        d["stopping"]["classification"] = None
    rules = ["score", "fail", "no_decision"] + (["nclex"] if with_scale else [])
    d["stopping"]["on_timeout"] = draw(st.sampled_from(rules))
    d["stopping"]["recent_estimates"] = draw(st.integers(1, 5))
    d["stopping"]["time_limit"] = draw(st.one_of(st.none(), st.floats(30.0, 900.0)))
    d["report"]["show_theta"] = draw(st.booleans())
    d["report"]["show_probability"] = draw(st.booleans())
    return ExamDesign.model_validate(d)


BASE = json.loads((Path(__file__).resolve().parents[2] / "item_pools" / "cmcs" / "design.json").read_text())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(design=designs(BASE), answers=st.lists(st.tuples(st.booleans(), st.floats(0.0, 240.0)), min_size=4,
                                              max_size=14),
       right=st.sampled_from([None, True, False]), wait_at_end=st.floats(0.0, 1000.0))
def test_results_never_contradict_and_hide_theta_unless_allowed(cmcs_bank, design, answers, right, wait_at_end):
    clock = FakeClock()
    d = Delivery(open_store("sqlite:///:memory:"), clock=clock, practice=True)
    d.add_version(cmcs_bank, design)
    s = d.start()
    bodies = [s]
    item, finished = s["item"], False
    for correct, seconds in answers:
        clock.advance(seconds)
        try:
            ack = d.answer(s["session_id"], s["token"], item_id=item["item_id"], seq=item["seq"],
                           choice=keyed_choice(cmcs_bank, item, correct if right is None else right))
        except Exception as err:  # noqa: BLE001 - only a late answer may be refused
            assert getattr(err, "status", None) == 409 and "time expired" in str(err), err
            finished = True
            break
        bodies.append(ack)
        if ack["finished"]:
            finished = True
            break
        item = ack["next"]
    if not finished:
        clock.advance(wait_at_end)
        cur = d.current(s["session_id"], s["token"])
        bodies.append(cur)
        finished = cur["finished"]
    if not finished:
        return
    res = d.result(s["session_id"], s["token"])
    bodies.append(res)
    event(f"{res['decision']} by {res['stopped_by']}")
    passing = None if design.scale is None else design.scale.scaled_cut
    if passing is None:
        assert "scaled_score" not in res
    elif res["decision"] == "pass":
        assert res["scaled_score"] >= passing, res
    elif res["decision"] == "fail":
        assert res["scaled_score"] < passing, res
    else:
        assert res["scaled_score"] is None, res
    keys = set()
    for b in bodies:
        _keys(b, keys)
    for key, flag in HIDDEN.items():
        if not getattr(design.report, flag):
            assert key not in keys, (key, flag)
    d.store.close()
