"""Answer similarity: the exact Poisson-binomial tail (brute-force enumeration), the null by simulation, power."""

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adaptive.exceptions import ScoringError
from adaptive.security import Records, answer_similarity, poisson_binomial_sf
from adaptive.synthetic import simulate_responses, synthetic_bank


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=9), st.integers(0, 10))
def test_poisson_binomial_tail_equals_enumeration(probs, h):
    want = 0.0
    for bits in itertools.product((0, 1), repeat=len(probs)):
        if sum(bits) >= h:
            want += np.prod([p if b else 1 - p for p, b in zip(probs, bits)])
    padded = np.array([probs + [0.7] * 3])  # padding beyond the length must not count
    got = poisson_binomial_sf([h], padded, [len(probs)])[0]
    assert got == pytest.approx(want, abs=1e-12)


def _honest_window(bank, n, rng, n_opt=4):
    """Honest candidates on a fixed form of the bank: wrong answers pick distractors by fixed shares."""
    arr = bank.compile()
    theta = rng.normal(size=n)
    x = simulate_responses(arr, theta, rng=rng)
    key = rng.integers(0, n_opt, arr.n_items)
    shares = rng.dirichlet(np.full(n_opt - 1, 2.0), arr.n_items)
    d = (rng.random(x.shape)[:, :, None] > np.cumsum(shares, 1)[None, :, :-1]).sum(2)
    wrong = np.where(d >= key[None, :], d + 1, d)
    option = np.where(x == 1, key[None, :], wrong)
    return x, option


def test_null_false_positive_rate_is_at_most_nominal():
    """Simulated honest candidates: the raw p-values of all pairs are at or below the nominal rate (the test
    is exact given the model, and conservative through discreteness)."""
    bank = synthetic_bank(40, model="2pl", rng=3)
    rng = np.random.default_rng(4)
    x, option = _honest_window(bank, 400, rng)
    rec = Records.from_matrix(bank, x, options=option)
    res = answer_similarity(bank, rec, screen=1.0, alpha=0.05)  # every pair with a shared wrong answer scored
    assert res.n_pairs == 400 * 399 // 2
    p = np.concatenate([res.p_values, np.ones(res.n_pairs - len(res))])
    for level in (0.05, 0.01):
        assert np.mean(p < level) <= level * 1.1
    assert np.mean(p < 0.05) > 0.01  # and not vacuous: the index has its nominal size to within discreteness
    assert not res.flagged.any()


def test_a_copier_is_found_and_groups_are_respected():
    bank = synthetic_bank(60, model="2pl", rng=5)
    rng = np.random.default_rng(6)
    x, option = _honest_window(bank, 200, rng)
    src = int(np.argmin(x[:100].sum(axis=1)))  # a weak source: many wrong answers to copy
    dst = (src + 1) % 100
    copy = rng.random(60) < 0.7
    x[dst, copy], option[dst, copy] = x[src, copy], option[src, copy]  # 70% of the source's answers copied
    pair = tuple(sorted((f"P{src + 1}", f"P{dst + 1}"), key=lambda p: int(p[1:])))
    sites = ["A"] * 100 + ["B"] * 100
    rec = Records.from_matrix(bank, x, options=option, site=sites, window=["W"] * 200)
    res = answer_similarity(bank, rec)
    flagged = {(a, b) for a, b, f in zip(res.person_a, res.person_b, res.flagged) if f}
    assert flagged == {pair}
    assert res.n_pairs == 2 * (100 * 99 // 2)
    assert res.correction == "bonferroni"
    # the same pair across sites is never compared
    other = ["A"] * 200
    other[src] = "B"
    res2 = answer_similarity(bank, Records.from_matrix(bank, x, options=option, site=other, window=["W"] * 200))
    assert pair not in set(zip(res2.person_a, res2.person_b)) and res2.n_pairs == 199 * 198 // 2
    bh = answer_similarity(bank, rec, correction="bh")
    assert {(a, b) for a, b, f in zip(bh.person_a, bh.person_b, bh.flagged) if f} == {pair}


def test_refusals():
    bank = synthetic_bank(10, model="2pl", rng=1)
    x = simulate_responses(bank.compile(), np.zeros(5), rng=1)
    rec = Records.from_matrix(bank, x)
    with pytest.raises(ScoringError, match="no answer carries the option chosen"):
        answer_similarity(bank, rec)
    rec = Records.from_matrix(bank, x, options=np.zeros_like(x))
    with pytest.raises(ScoringError, match="correction 'holm'"):
        answer_similarity(bank, rec, correction="holm")
    with pytest.raises(ScoringError, match="at most 3 are compared"):
        answer_similarity(bank, rec, max_group=3)
