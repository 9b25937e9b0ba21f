"""The batch engine: agreement with catR, batch and live sessions through one code path, batch composition."""

from __future__ import annotations

import csv
import gzip
import json

import numpy as np
import pytest

from adaptive import ItemBank, ResponseValidationError
from adaptive.cat import CatEngine, ExamDesign, Session, simulate_cat
from adaptive.cat._streams import batch_keys
from adaptive.cat.selection import RULES
from adaptive.irt.dichotomous import information_3pl as info_3pl
from adaptive.synthetic import simulate_responses
from tests.cat.helpers import cmcs_bank as _cmcs_bank
from tests.cat.helpers import with_pretest as _with_pretest
from tests.conftest import DATA

CAT = DATA / "cat"


def _catr_data():
    bank = ItemBank.from_csv(CAT / "pool_500_3pl.csv")
    with gzip.open(CAT / "responses_1000x500.csv.gz", "rt") as fh:
        rows = list(csv.reader(fh))
    x = np.array(rows[1:], dtype=float)
    with open(CAT / "catR_EAP_1000.csv") as fh:
        ref = list(csv.DictReader(fh))
    return bank, x, ref


@pytest.mark.reference
def test_post_hoc_agrees_with_catr():
    """catR 3.17 randomCAT (../shared/reference/cat/catR_EAP_1000.csv): 500-item 3PL pool, first item by MFI
    at θ = 0, MFI, EAP on 33 points on [-4, 4] with a N(0, 1) prior, 30 items, answers read from the fixed
    response matrix. catR and mirtCAT themselves agree on 98.5% of item sequences."""
    bank, x, ref = _catr_data()
    design = ExamDesign(min_length=30, max_length=30, estimator={"grid": (-4, 4, 33)}, content={"method": "none"})
    res = simulate_cat(design, bank, responses=x, seed=0)
    same = np.array([list(res.items_of(n)) == [int(v) - 1 for v in r["items"].split()] for n, r in enumerate(ref)])
    theta_ref = np.array([float(r["theta_hat"]) for r in ref])
    se_ref = np.array([float(r["se"]) for r in ref])
    assert same.mean() >= 0.98
    # the pool file carries 6 decimals; at the extremes (θ̂ near -2.7) that moves θ̂ by up to 2e-3
    np.testing.assert_allclose(res.theta[same], theta_ref[same], atol=0.01)
    np.testing.assert_allclose(res.se[same], se_ref[same], atol=0.01)
    assert np.median(np.abs(res.theta[same] - theta_ref[same])) < 1e-4
    assert np.mean(np.abs(res.theta - theta_ref) <= 0.01) >= 0.99
    # where the sequences part, our item is the more informative one at our θ̂ (near-ties in catR's θ̂)
    arr = bank.compile()
    for n in np.flatnonzero(~same):
        seq = [int(v) - 1 for v in ref[n]["items"].split()]
        ours = list(res.items_of(n))
        t = next(k for k in range(30) if ours[k] != seq[k])
        th = res.theta_path[n, t - 1]
        info = lambda i: info_3pl(th, arr.a[i], arr.thresholds[i, 0], arr.c[i])  # noqa: E731
        assert info(ours[t]) >= info(seq[t])


@pytest.mark.reference
def test_post_hoc_with_catr_conventions_reproduces_catr():
    """The same catR 3.17 run with catR's integration (``integrate.catR``: the trapezoid rule on 33 points
    on [-4, 4]): every item sequence, θ̂ and SE agree (the guard of ``estimator.quadrature = "trapezoid"``)."""
    bank, x, ref = _catr_data()
    design = ExamDesign(min_length=30, max_length=30, content={"method": "none"},
                        estimator={"grid": (-4, 4, 33), "quadrature": "trapezoid"})
    res = simulate_cat(design, bank, responses=x, seed=0)
    same = np.array([list(res.items_of(n)) == [int(v) - 1 for v in r["items"].split()] for n, r in enumerate(ref)])
    assert same.mean() >= 0.99
    np.testing.assert_allclose(res.theta[same], [float(r["theta_hat"]) for r, s in zip(ref, same) if s], atol=1e-6)
    np.testing.assert_allclose(res.se[same], [float(r["se"]) for r, s in zip(ref, same) if s], atol=1e-6)



STOPPING = {
    "fixed": ({"min_length": 12, "max_length": 12}, {}),
    "se": ({"min_length": 5, "max_length": 20}, {"se_target": 0.45}),
    "classification": ({"min_length": 5, "max_length": 20}, {"classification": {"z": 1.96}}),
    "sprt": ({"min_length": 5, "max_length": 20}, {"sprt": {"delta": 0.3}}),
    "time": ({"min_length": 5, "max_length": 20}, {"time_limit": 600.0, "seconds_per_item": 70.0}),
}


EXPOSURE = {"none": {}, "randomesque": {"randomesque": 3}, "sympson_hetter": {"sympson_hetter": True},
            "max_rate": {"max_rate": 0.5}}


def _contract_bank():
    bank = _cmcs_bank(120, seed=21)
    data = json.loads(bank.to_json())
    rng = np.random.default_rng(0)
    for it in data["items"]:
        it["exposure"] = float(np.round(rng.uniform(0.3, 1.0), 3))
    return ItemBank(**data)


def _run_live(design, bank, seeds, x):
    """Each simulee as a live session answering from its row of x."""
    out = []
    for seed, row in zip(seeds, x):
        s = Session.start(design, bank, seed=int(seed))
        while (item := s.next_item()) is not None:
            s.answer(item, int(row[bank.index[item]]), seconds=design.stopping.seconds_per_item)
        out.append(s.result())
    return out


@pytest.mark.parametrize("rule, exposure, stopping",
                         [(r, "none", "fixed") for r in sorted(RULES)]
                         + [("mfi", e, "fixed") for e in EXPOSURE if e != "none"]
                         + [("mfi", "none", s) for s in STOPPING if s != "fixed"]
                         + [("klp", "randomesque", "classification"), ("mpwi", "sympson_hetter", "sprt")])
def test_batch_and_live_sessions_agree(rule, exposure, stopping):
    bank = _contract_bank()
    lengths, stop = STOPPING[stopping]
    design = ExamDesign(**lengths, scale={"theta_cut": 0.2}, selection={"rule": rule}, exposure=EXPOSURE[exposure],
                        stopping=stop, pretest_items=0)
    theta = np.array([-1.2, 0.1, 0.9])
    x = simulate_responses(bank.compile(), theta, rng=4)
    seeds = [101, 202, 303]
    if exposure == "max_rate":  # sessions share exposure counts in a batch: compare one simulee at a time
        batch = [simulate_cat(design, bank, responses=x[k : k + 1], seed=[seeds[k]]) for k in range(3)]
        seqs = [b.items_of(0, scored_only=False) for b in batch]
        thetas = [b.theta[0] for b in batch]
        rules = [b.rule[0] for b in batch]
    else:
        batch = simulate_cat(design, bank, responses=x, seed=seeds)
        seqs = [batch.items_of(k, scored_only=False) for k in range(3)]
        thetas, rules = list(batch.theta), list(batch.rule)
    live = _run_live(design, bank, seeds, x)
    for k, res in enumerate(live):
        assert res.items == [bank.ids[i] for i in seqs[k]]
        assert res.theta == pytest.approx(thetas[k], abs=1e-12)
        assert res.stopped_by == rules[k]
        assert res.finished and res.decision in ("pass", "fail")


def test_batch_results_do_not_depend_on_batch_composition():
    bank = _cmcs_bank()
    design = ExamDesign(min_length=10, max_length=20, exposure={"randomesque": 5}, stopping={"se_target": 0.4})
    theta = np.random.default_rng(8).normal(size=40)
    keys = batch_keys(9, 40)
    full = simulate_cat(design, bank, thetas=theta, seed=9)
    eng = CatEngine(design, bank)
    part = simulate_cat(design, bank, thetas=theta[10:20], seed=9, engine=eng)  # different keys: sanity
    assert not np.array_equal(part.sequence, full.sequence[10:20])
    # the same keys in a smaller batch give the same tests
    from adaptive.cat.posthoc import draw_responses

    st = eng.start(keys[10:20])
    while st.active.any():
        items = eng.select(st)
        rows = np.flatnonzero(items >= 0)
        eng.record(st, rows, items[rows], draw_responses(eng, st.keys[rows], st.n_given[rows], items[rows],
                                                         theta[10:20][rows]))
    np.testing.assert_array_equal(eng.result(st).sequence, full.sequence[10:20])


def test_post_hoc_responses_are_validated_with_row_and_item():
    bank = _cmcs_bank(60, seed=2)
    x = simulate_responses(bank.compile(), np.zeros(3), rng=1)
    x[2, 5] = 3
    with pytest.raises(ResponseValidationError, match=rf"row 2, item '{bank.ids[5]}'"):
        simulate_cat(ExamDesign(min_length=5, max_length=5), bank, responses=x)



def test_pretest_items_never_change_the_score():
    bank = _with_pretest()
    design = ExamDesign(min_length=20, max_length=20, pretest_items=4)
    theta = np.random.default_rng(4).normal(size=50)
    x = simulate_responses(bank.compile(), theta, rng=5)
    flipped = x.copy()
    flipped[:, :20] = 1 - flipped[:, :20]  # every pretest answer reversed
    a = simulate_cat(design, bank, responses=x, seed=7)
    b = simulate_cat(design, bank, responses=flipped, seed=7)
    np.testing.assert_array_equal(a.theta, b.theta)
    for k in range(50):
        np.testing.assert_array_equal(a.items_of(k), b.items_of(k))
        pre = a.sequence[k][(a.sequence[k] >= 0) & ~a.scored[k]]
        assert len(pre) == 4 and np.all(pre < 20)
        assert len(a.items_of(k)) == 20
    # and against a design without pretest items: the same scored tests
    c = simulate_cat(ExamDesign(min_length=20, max_length=20), bank, responses=x, seed=7)
    np.testing.assert_array_equal(c.theta, a.theta)
