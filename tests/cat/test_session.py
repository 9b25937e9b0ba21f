"""Live sessions (cat/session.py): persistence, bad calls that change nothing, the audit trail."""

from __future__ import annotations

import numpy as np
import pytest

from adaptive import ResponseValidationError, SessionStateError
from adaptive.cat import ExamDesign, Session
from tests.cat.helpers import with_pretest as _with_pretest


def _session_setup():
    bank = _with_pretest()
    design = ExamDesign(min_length=10, max_length=15, pretest_items=2, scale={"theta_cut": 0.2},
                        stopping={"classification": {}}, exposure={"randomesque": 3})
    return bank, design


def test_json_round_trip_mid_exam_resumes_the_same_continuation():
    bank, design = _session_setup()
    answers = np.random.default_rng(0).integers(0, 2, size=400)
    a = Session.start(design, bank, seed=99, session_id="C-17")
    for k in range(6):
        a.answer(a.next_item(), int(answers[k]), seconds=30)
    pending = a.next_item()
    text = a.to_json()
    b = Session.from_json(text, design, bank)
    assert b.next_item() == pending and b.session_id == "C-17"
    k = 6
    while (item := a.next_item()) is not None:
        assert b.next_item() == item
        a.answer(item, int(answers[k]), seconds=30)
        b.answer(item, int(answers[k]), seconds=30)
        k += 1
    assert a.result() == b.result()
    assert len(a.audit) == len(a.result().items)
    other = ExamDesign(min_length=10, max_length=16, pretest_items=2, scale={"theta_cut": 0.2})
    with pytest.raises(SessionStateError, match="another exam design"):
        Session.from_json(text, other, bank)


def _snapshot(s):
    st = s._state
    return (s.to_json(), st.theta.copy(), st.log_post.copy(), st.administered.copy(), st.n_given.copy(),
            len(s.audit))


def _same(a, b):
    return a[0] == b[0] and all(np.array_equal(x, y) for x, y in zip(a[1:5], b[1:5])) and a[5] == b[5]


def test_bad_calls_raise_and_change_nothing():
    bank, design = _session_setup()
    s = Session.start(design, bank, seed=5, session_id="S1")
    with pytest.raises(SessionStateError, match="was not presented"):
        s.answer(bank.ids[0], 1)
    first = s.next_item()
    s.answer(first, 1, seconds=20)
    item = s.next_item()
    before = _snapshot(s)
    other = next(i for i in bank.ids if i not in (first, item))
    cases = [
        (SessionStateError, "was answered already", lambda: s.answer(first, 1)),
        (SessionStateError, "was not presented", lambda: s.answer(other, 0)),
        (ResponseValidationError, "not a category 0..1", lambda: s.answer(item, 2)),
        (ResponseValidationError, "not a category", lambda: s.answer(item, "yes")),
        (ResponseValidationError, "not a category", lambda: s.answer(item, 0.5)),
        (ResponseValidationError, "seconds", lambda: s.answer(item, 1, seconds=-3)),
    ]
    for exc, msg, call in cases:
        with pytest.raises(exc, match=msg) as ei:
            call()
        assert "S1" in str(ei.value)
        assert _same(before, _snapshot(s))
    while (it := s.next_item()) is not None:
        s.answer(it, 1, seconds=10)
    done = _snapshot(s)
    with pytest.raises(SessionStateError, match="has ended"):
        s.answer(item, 1)
    assert _same(done, _snapshot(s))
    assert s.result().finished and s.result().decision == "pass"


def test_audit_explains_each_step():
    bank, design = _session_setup()
    s = Session.start(design, bank, seed=3)
    e1 = s.answer(s.next_item(), 1, seconds=12.5)
    e2 = s.answer(s.next_item(), 0, seconds=7.0)
    assert e1.step == 1 and e2.step == 2
    assert e2.theta_before == e1.theta_after
    assert sum(e2.domain_counts.values()) == s.n_scored
    res = s.result()
    assert res.theta_path[-1] == e2.theta_after or e2.pretest
    assert 0.0 <= e2.p_pass <= 1.0
