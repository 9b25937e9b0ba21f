"""The adaptive engine: agreement with catR, exact MFI, contracts between batch and live sessions,
constraints, pretest items, persistence and bad calls."""

from __future__ import annotations

import csv
import gzip
import itertools
import json

import numpy as np
import pytest

from adaptive import DesignError, ItemBank, ResponseValidationError, SessionStateError
from adaptive.cat import CatEngine, ExamDesign, Session, simulate_cat
from adaptive.cat._streams import batch_keys
from adaptive.cat.selection import RULES
from adaptive.irt.dichotomous import information_3pl as info_3pl
from adaptive.synthetic import simulate_responses, synthetic_bank
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


def _cmcs_bank(n=300, seed=11, **kw):
    return synthetic_bank(n, model="3pl", rng=seed, **kw)


@pytest.mark.parametrize("content, k", [("none", 1), ("heuristic", 1), ("heuristic", 3), ("none", 4)])
def test_exact_mfi_index_equals_scoring_every_item(content, k):
    bank = _cmcs_bank()
    design = ExamDesign(min_length=25, max_length=25, content={"method": content}, exposure={"randomesque": k})
    fast = CatEngine(design, bank)
    slow = CatEngine(design, bank)
    slow.mfi_index = None  # every item scored exactly at every step
    assert fast.mfi_index is not None
    theta = np.random.default_rng(3).normal(size=300)
    a = simulate_cat(design, bank, thetas=theta, seed=5, engine=fast)
    b = simulate_cat(design, bank, thetas=theta, seed=5, engine=slow)
    np.testing.assert_array_equal(a.sequence, b.sequence)
    np.testing.assert_array_equal(a.theta, b.theta)


def test_mfi_picks_the_argmax_with_ties_to_lower_index():
    items = [{"id": f"T{k}", "model": "2pl", "a": 1.0, "b": 0.0} for k in range(3)]
    items += [{"id": "W", "model": "2pl", "a": 0.5, "b": 0.0}]
    bank = ItemBank(items=items)
    s = Session.start(ExamDesign(min_length=2, max_length=2, content={"method": "none"}), bank, seed=1)
    assert s.next_item() == "T0"  # identical items: the first in bank order


# ----------------------------------------------------------------------------- contract suite

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


# ----------------------------------------------------------------------------- constraints


def _bank_with_enemies():
    bank = _cmcs_bank(260, seed=5)
    data = json.loads(bank.to_json())
    for k in range(0, 60, 3):  # enemy groups of three
        for j in range(3):
            data["items"][k + j]["enemy_groups"] = [f"G{k}"]
    data["items"][100]["enemies"] = [data["items"][101]["id"]]
    return ItemBank(**data)


@pytest.mark.parametrize("method", ["heuristic", "shadow"])
def test_blueprint_and_enemies_hold_in_every_test(method):
    bank = _bank_with_enemies()
    design = ExamDesign(min_length=30, max_length=30, content={"method": method})
    eng = CatEngine(design, bank)
    n = 60 if method == "heuristic" else 12
    res = simulate_cat(design, bank, thetas=np.random.default_rng(2).normal(size=n), seed=3, engine=eng)
    lo, hi = eng.bp.bounds(30)
    pairs = {tuple(p) for p in bank.compile().enemy_pairs}
    for k in range(n):
        items = res.items_of(k)
        assert len(items) == 30 and len(set(items)) == 30
        counts = np.bincount(eng.bp.item_domain[items], minlength=eng.bp.n_domains)
        assert np.all(counts >= lo) and np.all(counts <= hi), counts
        assert not any((min(i, j), max(i, j)) in pairs for i, j in itertools.combinations(items, 2))


def test_variable_length_tests_meet_the_blueprint_when_they_stop():
    bank = _cmcs_bank(300, seed=6)
    design = ExamDesign(min_length=12, max_length=40, stopping={"se_target": 0.35})
    eng = CatEngine(design, bank)
    res = simulate_cat(design, bank, thetas=np.random.default_rng(1).normal(size=100), seed=2, engine=eng)
    for k in range(100):
        items = res.items_of(k)
        lo, hi = eng.bp.bounds(len(items))
        counts = np.bincount(eng.bp.item_domain[items], minlength=eng.bp.n_domains)
        assert np.all(counts >= lo) and np.all(counts <= hi)


def test_impossible_designs_are_refused_with_the_reason():
    bank = _cmcs_bank(60, seed=1)
    with pytest.raises(DesignError, match="needs that many operational items"):
        CatEngine(ExamDesign(min_length=70, max_length=70), bank)
    bp = {"domains": [{"name": d, "min_items": 20 if d == "Modifiers" else 0} for d in bank.blueprint.names]}
    with pytest.raises(DesignError, match="'Modifiers' needs at least 20 items"):
        CatEngine(ExamDesign(min_length=30, max_length=30, content={"blueprint": bp}), bank)
    data = json.loads(bank.to_json())
    for it in data["items"]:
        it["enemy_groups"] = ["ALL"] if int(it["id"][-3:]) % 2 else []
    enemies = ItemBank(**data)
    with pytest.raises(DesignError, match="enemy pairs"):
        CatEngine(ExamDesign(min_length=40, max_length=40, content={"method": "none"}), enemies)
    with pytest.raises(DesignError, match="pretest items"):
        CatEngine(ExamDesign(min_length=10, max_length=10, pretest_items=2), bank)


# ----------------------------------------------------------------------------- pretest, stopping


def _with_pretest(n_pre=20):
    bank = _cmcs_bank(200, seed=9)
    data = json.loads(bank.to_json())
    for it in data["items"][:n_pre]:
        it["status"] = "pretest"
    return ItemBank(**data)


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


def test_stopping_rules_fire_as_stated():
    bank = _cmcs_bank(300, seed=12)
    theta = np.random.default_rng(2).normal(size=200)
    d_se = ExamDesign(min_length=5, max_length=50, stopping={"se_target": 0.3})
    r = simulate_cat(d_se, bank, thetas=theta, seed=1)
    by_se = r.rule == "se_target"
    assert by_se.any() and np.all(r.se[by_se] <= 0.3) and np.all(r.n_items[~by_se] == 50)
    d_ci = ExamDesign(min_length=5, max_length=50, scale={"theta_cut": 0.0}, stopping={"classification": {"z": 1.96}})
    r = simulate_cat(d_ci, bank, thetas=theta, seed=1)
    ci = r.rule == "classification"
    assert ci.any()
    lower = r.theta - 1.96 * r.se
    upper = r.theta + 1.96 * r.se
    assert np.all(np.where(r.decision[ci] == "pass", lower[ci] > 0, upper[ci] < 0))
    at_max = r.rule == "max_length"
    assert np.all((r.decision[at_max] == "pass") == (r.theta[at_max] >= 0))
    d_t = ExamDesign(min_length=10, max_length=50, scale={"theta_cut": 0.0},
                     stopping={"time_limit": 900, "seconds_per_item": 60, "on_timeout": "fail"})
    r = simulate_cat(d_t, bank, thetas=theta[:5], seed=1)
    assert np.all(r.n_items == 15) and np.all(r.rule == "time_limit") and np.all(r.decision == "fail")


def test_pool_exhaustion_stops_with_the_rule():
    bank = _cmcs_bank(40, seed=3)
    design = ExamDesign(min_length=5, max_length=40, content={"method": "none"}, scale={"theta_cut": 0.0})
    x = simulate_responses(bank.compile(), np.zeros(2), rng=1)
    x[:, 10:] = np.nan  # post-hoc: only 10 items answered
    r = simulate_cat(design, bank, responses=x, seed=1)
    assert np.all(r.rule == "pool_exhausted") and np.all(r.n_items == 10)


# ----------------------------------------------------------------------------- sessions


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
    cases = [
        (SessionStateError, "was answered already", lambda: s.answer(first, 1)),
        (SessionStateError, "was not presented", lambda: s.answer(next(i for i in bank.ids if i not in (first, item)), 0)),
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


def test_design_loads_from_toml_and_reports_field_errors(tmp_path):
    p = tmp_path / "d.toml"
    p.write_text('name = "cmcs"\nmin_length = 10\nmax_length = 40\n[scale]\ntheta_cut = 0.25\n'
                 '[selection]\nrule = "mpwi"\n[stopping]\nse_target = 0.3\n')
    d = ExamDesign.load(p)
    assert d.selection.rule == "mpwi" and d.scale.theta_cut == 0.25
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"min_length": 50, "max_length": 40, "selection": {"rule": "best"}}))
    with pytest.raises(DesignError) as ei:
        ExamDesign.load(bad)
    assert "field 'selection.rule'" in str(ei.value) and str(bad) in str(ei.value)


def test_shadow_candidate_reduction_keeps_the_optimum():
    bank = _bank_with_enemies()
    design = ExamDesign(min_length=20, max_length=20, content={"method": "shadow"})
    reduced = CatEngine(design, bank)
    full = CatEngine(design, bank)
    full.shadow_candidates = lambda value, free, *rest: free  # the whole pool in every program
    theta = np.random.default_rng(6).normal(size=4)
    a = simulate_cat(design, bank, thetas=theta, seed=2, engine=reduced)
    b = simulate_cat(design, bank, thetas=theta, seed=2, engine=full)
    np.testing.assert_array_equal(a.sequence, b.sequence)


def test_start_rules():
    bank = _cmcs_bank(120, seed=4)
    theta = np.zeros(30)
    named = ExamDesign(min_length=5, max_length=5, content={"method": "none"},
                       start={"kind": "items", "n_items": 2, "item_ids": [bank.ids[7], bank.ids[3]]})
    r = simulate_cat(named, bank, thetas=theta, seed=1)
    assert np.all(r.sequence[:, 0] == 7) and np.all(r.sequence[:, 1] == 3)
    near = ExamDesign(min_length=5, max_length=5, content={"method": "none"},
                      start={"kind": "items", "n_items": 1, "theta": 1.0, "window": 6})
    r = simulate_cat(near, bank, thetas=theta, seed=1)
    b = bank.compile().thresholds[:, 0]
    nearest = set(np.argsort(np.abs(b - 1.0), kind="stable")[:6])
    assert set(r.sequence[:, 0]) <= nearest and len(set(r.sequence[:, 0])) > 1
    rnd = ExamDesign(min_length=5, max_length=5, content={"method": "none"},
                     start={"kind": "random_theta", "low": -2.0, "high": 2.0})
    r = simulate_cat(rnd, bank, thetas=theta, seed=1)
    assert len(set(r.sequence[:, 0])) > 1  # first items differ with the drawn start θ


def test_post_hoc_responses_are_validated_with_row_and_item():
    bank = _cmcs_bank(60, seed=2)
    x = simulate_responses(bank.compile(), np.zeros(3), rng=1)
    x[2, 5] = 3
    with pytest.raises(ResponseValidationError, match=rf"row 2, item '{bank.ids[5]}'"):
        simulate_cat(ExamDesign(min_length=5, max_length=5), bank, responses=x)
