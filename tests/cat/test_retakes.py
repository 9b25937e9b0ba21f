"""Retakes (issue 15, engine part): items a candidate saw in earlier attempts are excluded by a mask in the
engine, the same for batch simulations and live sessions; a retake the remaining pool cannot serve is refused
with the reason."""

from __future__ import annotations

import numpy as np
import pytest

from adaptive import DesignError
from adaptive.cat import ExamDesign, Session, simulate_cat
from adaptive.synthetic import synthetic_bank


def _setup():
    bank = synthetic_bank(300, model="3pl", rng=31)
    design = ExamDesign(min_length=30, max_length=30, scale={"theta_cut": 0.2}, exposure={"randomesque": 3})
    return bank, design


def test_a_thousand_retakes_never_repeat_an_item_of_the_first_attempt():
    bank, design = _setup()
    theta = np.random.default_rng(5).normal(size=1000)
    first = simulate_cat(design, bank, thetas=theta, seed=1)
    seen = [[bank.ids[i] for i in first.items_of(k, scored_only=False)] for k in range(1000)]
    second = simulate_cat(design, bank, thetas=theta, seed=2, exclude=seen)
    for k in range(1000):
        again = set(second.items_of(k, scored_only=False).tolist())
        assert not again & {bank.index[i] for i in seen[k]}
    assert np.all(second.n_items == 30)  # the blueprint is still met from what is left


def test_a_live_retake_is_the_batch_retake():
    """Simulee k of ``simulate_cat(seed=[...])`` is ``Session.start(seed=seeds[k])``: with the same exclusions the
    live retake gives the same test (one code path)."""
    bank, design = _setup()
    theta = np.array([-1.0, 0.2, 1.4])
    seeds = [71, 72, 73]
    first = simulate_cat(design, bank, thetas=theta, seed=seeds)
    seen = [[bank.ids[i] for i in first.items_of(k, scored_only=False)] for k in range(3)]
    batch = simulate_cat(design, bank, thetas=theta, seed=[s + 100 for s in seeds], exclude=seen)
    for k in range(3):
        live = Session.start(design, bank, seed=seeds[k] + 100, exclude=seen[k])
        given = batch.items_of(k, scored_only=False).tolist()
        while (item := live.next_item()) is not None:
            pos = given.index(bank.index[item])
            live.answer(item, int(batch.response[k, pos]), seconds=60.0)
        assert [bank.index[i] for i in live.result().items] == given
        assert live.result().theta == pytest.approx(batch.theta[k], abs=1e-12)


def test_the_exclusions_survive_a_stored_session():
    bank, design = _setup()
    seen = list(bank.ids[:40])
    s = Session.start(design, bank, seed=9, exclude=seen)
    for _ in range(5):
        s.answer(s.next_item(), 1, seconds=30.0)
    back = Session.from_json(s.to_json(key="k"), design, bank, key="k")
    assert back.exclude == tuple(sorted(seen)) and back.next_item() == s.next_item()
    assert not set(back.result().items) & set(seen)


def test_a_retake_the_pool_cannot_serve_is_refused_with_the_reason():
    bank, design = _setup()
    domain = bank.items[0].domain
    whole_domain = [it.id for it in bank.items if it.domain == domain]
    with pytest.raises(DesignError) as ei:
        Session.start(design, bank, seed=1, exclude=whole_domain)
    text = str(ei.value)
    assert f"once the {len(whole_domain)} excluded items are taken out" in text
    assert f"blueprint domain '{domain}' needs at least" in text and "what is left has 0 operational items" in text
    with pytest.raises(DesignError, match="a blueprint domain keeps fewer items than its minimum"):
        simulate_cat(design, bank, thetas=np.zeros(3), exclude=[[], whole_domain, []])
    with pytest.raises(DesignError, match="not in bank"):
        Session.start(design, bank, seed=1, exclude=["no-such-item"])


def test_a_retake_with_fewer_items_left_than_the_test_length_is_refused():
    bank, design = _setup()
    operational = [it.id for it in bank.items if it.status == "operational"]
    keep = design.max_length - 1  # one item short of a full test
    too_many = operational[keep:]
    with pytest.raises(DesignError) as ei:
        Session.start(design, bank, seed=1, exclude=too_many)
    assert f"max_length {design.max_length} needs that many operational items" in str(ei.value)
    assert f"has {keep}" in str(ei.value)
    with pytest.raises(DesignError, match=r"for 1 simulee\(s\) \(first: row 1\) fewer than max_length"):
        simulate_cat(design, bank, thetas=np.zeros(2), exclude=[[], too_many])
