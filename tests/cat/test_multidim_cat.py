"""Multidimensional CAT: mirtCAT's D-rule sequences, the optimality rules from their definitions, batch = live.

Reference: mirtCAT 1.14 (../shared/reference/multidim, README case h, copied into tests/data/multidim):
``mirtCAT(..., method='MAP', criteria='Drule', start_item='Drule', design=list(min_items=30, max_items=30))``
on a 300-item 2-dimensional M2PL bank, 200 simulees whose answers are read from a fixed full matrix.
"""

import csv

import numpy as np
import pytest

from adaptive.cat.multidim import (
    RULES,
    MultidimDesign,
    _Compiled,
    criterion_values,
    new_batch,
    run_mcat,
)
from adaptive.cat.multidim_session import MultidimSession
from adaptive.exceptions import DesignError, SessionStateError

from .multidim_data import DATA, SIGMA, assert_live_equals_batch_of_one


@pytest.mark.reference
def test_d_rule_map_reproduces_mirtcat_sequences(mcat_bank, mcat_answers):
    with open(DATA / "mirtCAT_Drule_MAP_200.csv") as fh:
        ref = list(csv.DictReader(fh))
    state = run_mcat(mcat_bank, MultidimDesign(rule="d_rule", min_items=30, max_items=30), mcat_answers)
    seqs = np.array([[int(v) - 1 for v in r["items"].split()] for r in ref])
    same = (state.given == seqs).all(axis=1)
    assert same.mean() >= 0.9  # the bar; on this data every one of the 200 sequences is mirtCAT's
    assert same.all()
    theta = np.array([[float(r["theta1_hat"]), float(r["theta2_hat"])] for r in ref])
    se = np.array([[float(r["SE1"]), float(r["SE2"])] for r in ref])
    np.testing.assert_allclose(state.theta, theta, atol=1e-4)
    np.testing.assert_allclose(state.se, se, atol=1e-4)
    assert (state.stop_labels == "max_items").all()


def _info_2pl(mcat_bank, theta):
    """Closed form for the M2PL: I_j(θ) = a_j a_jᵀ P_j (1 - P_j) (independent of adaptive.irt.linear)."""
    a, d = mcat_bank.phi[:, :2], mcat_bank.phi[:, 2]
    p = 1 / (1 + np.exp(-(theta @ a.T + d)))  # (N, I)
    return (p * (1 - p))[:, :, None, None] * a[None, :, :, None] * a[None, :, None, :]


@pytest.mark.parametrize("rule", ["d_rule", "t_rule", "a_rule", "e_rule", "w_rule"])
@pytest.mark.parametrize("include_prior", [False, True])
@pytest.mark.parametrize("rank_one", [True, False])
def test_optimality_criteria_follow_their_definitions(mcat_bank, rule, include_prior, rank_one):
    """Both paths: the rank-one formulas (determinant lemma, Sherman-Morrison) and the full matrices."""
    comp = _Compiled(mcat_bank, MultidimDesign(rule=rule, include_prior=include_prior, weights=(0.3, 0.7)
                                          if rule == "w_rule" else None))
    comp.rank_one = rank_one
    state = new_batch(comp, 4)
    rng = np.random.default_rng(5)
    state.theta[:] = rng.normal(size=(4, 2))
    for n in range(4):  # a few items given to each
        items = rng.choice(300, size=n + 1, replace=False)
        state.answers[n, items] = rng.integers(0, 2, size=items.size)
    got = criterion_values(comp, state, np.arange(4))
    info = _info_2pl(mcat_bank, state.theta)
    given = ~np.isnan(state.answers)
    for n in range(4):
        test = info[n][given[n]].sum(axis=0) + (np.linalg.inv(SIGMA) if include_prior else 0)
        for j in range(0, 300, 37):
            m = test + info[n, j]
            want = {"d_rule": np.linalg.det(m), "t_rule": np.trace(m),
                    "a_rule": -np.trace(np.linalg.inv(m)) if abs(np.linalg.det(m)) > 1e-12 else -np.inf,
                    "e_rule": np.linalg.eigvalsh(m).min(), "w_rule": np.array([0.3, 0.7]) @ m @ [0.3, 0.7]}[rule]
            assert got[n, j] == pytest.approx(want, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("rule", RULES)
def test_every_rule_gives_the_same_test_in_batch_and_live(mcat_bank, mcat_answers, rule):
    domains = {i: ("F1" if k < 150 else "F2") for k, i in enumerate(mcat_bank.item_ids)}
    design = MultidimDesign(rule=rule, min_items=5, max_items=12, se_target=0.45, include_prior=rule == "a_rule",
                            randomesque=2, exposure={"C001": 0.5, "C151": 0.5, "C002": 0.7}, domains=domains,
                            domain_min={"F1": 3, "F2": 3})
    batch = run_mcat(mcat_bank, design, mcat_answers[:6], rng=11)
    for n in range(6):
        # the batch drew its randomesque choices from one stream for all sessions; replaying live with the same
        # stream needs the batch of one, so compare against a batch of one run the same way
        assert_live_equals_batch_of_one(mcat_bank, design, mcat_answers[n])
    assert set(batch.stop_labels) <= {"max_items", "se_target"}


def test_stopping_on_se_trace_and_determinant(mcat_bank, mcat_answers):
    se = run_mcat(mcat_bank, MultidimDesign(min_items=3, max_items=60, se_target=0.4), mcat_answers[:20])
    assert (se.stop_labels == "se_target").all() and (se.se <= 0.4).all()
    assert (se.n_given >= 3).all()
    tr = run_mcat(mcat_bank, MultidimDesign(min_items=3, max_items=60, trace_target=0.25), mcat_answers[:20])
    assert (np.trace(tr.cov, axis1=1, axis2=2) <= 0.25).all() and (tr.stop_labels == "trace_target").all()
    de = run_mcat(mcat_bank, MultidimDesign(min_items=3, max_items=80, det_target=0.005), mcat_answers[:20])
    assert (np.linalg.det(de.cov) <= 0.005).all() and (de.stop_labels == "det_target").all()
    # one item earlier the SE target was not met: replay each test one item shorter (same sequence)
    for n in range(0, 20, 4):
        k = int(se.n_given[n]) - 1
        if k >= 3:
            shorter = run_mcat(mcat_bank, MultidimDesign(min_items=k, max_items=k), mcat_answers[n:n + 1])
            assert (shorter.given[0, :k] == se.given[n, :k]).all() and (shorter.se[0] > 0.4).any()


def test_domains_and_enemies_are_kept(mcat_bank, mcat_answers):
    domains = {i: ("F1" if k < 150 else "F2") for k, i in enumerate(mcat_bank.item_ids)}
    enemies = (("C001", "C151"),)
    st = run_mcat(mcat_bank, MultidimDesign(min_items=20, max_items=20, domains=domains, domain_max={"F1": 8},
                                       enemies=enemies), mcat_answers[:30])
    f1 = (st.given < 150).sum(axis=1)
    assert (f1 <= 8).all() and (f1 == 8).any()
    both = np.isin(st.given, [0]).any(axis=1) & np.isin(st.given, [150]).any(axis=1)
    assert not both.any()


def test_bad_design_and_bad_answers_are_refused(mcat_bank):
    with pytest.raises(DesignError, match="field 'rule'"):
        MultidimSession(mcat_bank, MultidimDesign(rule="fisher"))
    with pytest.raises(DesignError, match="prior_cov"):
        MultidimSession(mcat_bank, MultidimDesign(prior_cov=((1, 2), (2, 1))))
    with pytest.raises(DesignError, match="max_items"):
        MultidimSession(mcat_bank, MultidimDesign(max_items=301))
    live = MultidimSession(mcat_bank, MultidimDesign())
    first = live.next_item()
    with pytest.raises(SessionStateError, match="not the item"):
        live.answer("C002", 1)
    with pytest.raises(SessionStateError, match="not a category"):
        live.answer(first, 2)
    assert live.items == () and live.next_item() == first  # nothing recorded


def test_domain_minima_are_met_and_hold_back_the_stop(mcat_bank, mcat_answers):
    domains = {i: ("F1" if k < 150 else "F2") for k, i in enumerate(mcat_bank.item_ids)}
    fixed = run_mcat(mcat_bank, MultidimDesign(min_items=12, max_items=12, domains=domains, domain_min={"F2": 9}),
                     mcat_answers[:40])
    assert ((fixed.given >= 150).sum(axis=1) >= 9).all()
    early = run_mcat(mcat_bank, MultidimDesign(min_items=1, max_items=60, se_target=0.6, domains=domains,
                                          domain_min={"F1": 6, "F2": 6}), mcat_answers[:40])
    assert ((early.given[:, :] >= 150).sum(axis=1) >= 6).all() and (((early.given >= 0) & (early.given < 150)).sum(
        axis=1) >= 6).all()
    with pytest.raises(DesignError, match="domain_min"):
        MultidimSession(mcat_bank, MultidimDesign(max_items=10, domains=domains, domain_min={"F1": 6, "F2": 6}))


def test_sympson_hetter_sets_items_aside(mcat_bank, mcat_answers):
    """The D-rule's first item is item 1 for everyone; with k = 0.3 about 30% of the tests start with it (the
    other 70% set it aside for the whole test), with k = 0 it is never given."""
    st = run_mcat(mcat_bank, MultidimDesign(min_items=5, max_items=5, exposure={"C001": 0.3}), mcat_answers, rng=4)
    share = (st.given[:, 0] == 0).mean()
    assert 0.2 < share < 0.4  # binomial(200, 0.3): 3.1 SDs either side
    assert ((st.given == 0).sum(axis=1) <= 1).all()
    assert (st.given[~(st.given[:, 0] == 0)] != 0).all()  # set aside: never given later in that test
    none = run_mcat(mcat_bank, MultidimDesign(min_items=5, max_items=5, exposure={"C001": 0.0}), mcat_answers[:30],
                    rng=4)
    assert not (none.given == 0).any()
    with pytest.raises(DesignError, match="exposure"):
        MultidimSession(mcat_bank, MultidimDesign(exposure={"C001": 1.5}))


def test_pretest_items_are_given_unscored_before_the_earliest_stop(mcat_bank, mcat_answers):
    pretest = tuple(mcat_bank.item_ids[k] for k in (5, 40, 160, 200, 250))
    design = MultidimDesign(min_items=6, max_items=20, se_target=0.5, pretest=pretest, pretest_count=2)
    st = run_mcat(mcat_bank, design, mcat_answers[:40], rng=7)
    pre_idx = [mcat_bank.item_ids.index(i) for i in pretest]
    assert (st.n_pretest == 2).all()
    assert (~np.isnan(st.pretest_answers[:, pre_idx])).sum(axis=1).tolist() == [2] * 40
    assert not np.isin(st.given, pre_idx).any()           # never scored
    np.testing.assert_array_equal(np.isnan(st.answers[:, pre_idx]), True)
    # the scored estimate is the one without them: the same tests replayed with the pretest answers removed
    plain = run_mcat(mcat_bank, MultidimDesign(min_items=6, max_items=20, se_target=0.5), mcat_answers[:40], rng=7)
    np.testing.assert_allclose(st.theta, plain.theta, atol=1e-12)
    # live: the same items in the same order, pretest included
    for n in range(3):
        one = run_mcat(mcat_bank, design, mcat_answers[n:n + 1], rng=9)
        live = MultidimSession(mcat_bank, design, rng=9)
        order = []
        while (item := live.next_item()) is not None:
            order.append(item)
            live.answer(item, int(mcat_answers[n, mcat_bank.item_ids.index(item)]))
        assert live.items == tuple(mcat_bank.item_ids[j] for j in one.given[0, :one.n_given[0]])
        assert set(live.pretest_items) <= set(pretest) and len(live.pretest_items) == 2
        assert order.index(live.pretest_items[-1]) < 6 + 2  # before the earliest possible stop
    with pytest.raises(DesignError, match="pretest_count"):
        MultidimSession(mcat_bank, MultidimDesign(pretest=pretest, pretest_count=6))


def test_kl_criterion_is_the_sum_of_kullback_leibler_divergences(mcat_bank):
    """KL for vector θ: Σ over the 5 x 5 points θ̂ ± 3/√n of KL(P(θ̂) || P(θ)), with 2PL probabilities in closed
    form (independent of adaptive.irt.linear)."""
    comp = _Compiled(mcat_bank, MultidimDesign(rule="kl"))
    state = new_batch(comp, 3)
    rng = np.random.default_rng(6)
    state.theta[:] = rng.normal(size=(3, 2))
    state.answers[0, :4] = 1.0
    got = criterion_values(comp, state, np.arange(3))
    a, d = mcat_bank.phi[:, :2], mcat_bank.phi[:, 2]
    grid = np.linspace(-1, 1, 5)
    for n in range(3):
        used = max(int((~np.isnan(state.answers[n])).sum()), 1)
        p_hat = 1 / (1 + np.exp(-(a @ state.theta[n] + d)))
        want = np.zeros(300)
        for u in grid:
            for v in grid:
                p = 1 / (1 + np.exp(-(a @ (state.theta[n] + 3 / np.sqrt(used) * np.array([u, v])) + d)))
                want += p_hat * np.log(p_hat / p) + (1 - p_hat) * np.log((1 - p_hat) / (1 - p))
        np.testing.assert_allclose(got[n], want, rtol=1e-9, atol=1e-12)
