"""Simulation metrics against brute-force counts (the definitions written out per simulee)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from adaptive.cat import ExamDesign, simulate_cat
from adaptive.simulation import (
    blueprint_conformance,
    classification,
    domain_counts,
    exposure_rates,
    overlap_rate,
)
from adaptive.synthetic import synthetic_bank


@pytest.fixture(scope="module")
def run():
    bank = synthetic_bank(120, pretest=0.1, rng=3)
    design = ExamDesign(min_length=10, max_length=20, pretest_items=2, scale={"theta_cut": 0.2},
                        stopping={"classification": {"z": 1.96}}, exposure={"randomesque": 4})
    theta = np.random.default_rng(5).normal(0, 1, 60)
    return bank, design, theta, simulate_cat(design, bank, thetas=theta, seed=9)


def test_domain_counts_and_conformance_match_a_per_simulee_count(run):
    bank, _, _, res = run
    names = list(bank.blueprint.names)
    dom = np.array([names.index(it.domain) for it in bank.items])
    counts = domain_counts(res, dom, len(names))
    for n in range(len(res)):
        given = res.items_of(n)  # scored items only
        assert counts[n].tolist() == [int(np.sum(dom[given] == d)) for d in range(len(names))]
    ok = blueprint_conformance(res, bank)
    for n in range(len(res)):
        L = res.n_items[n]
        expect = all(np.floor(d.proportion * L + 1e-9) <= counts[n, k] <= np.ceil(d.proportion * L - 1e-9)
                     for k, d in enumerate(bank.blueprint.domains))
        assert ok[n] == expect


def test_classification_counts(run):
    _, design, theta, res = run
    c = classification(res.decision, theta, design.theta_cut)
    truth = theta >= design.theta_cut
    rows = list(zip(res.decision, truth))
    assert c.n == 60
    assert c.false_pass == sum(d == "pass" and not t for d, t in rows) / 60
    assert c.false_fail == sum(d == "fail" and t for d, t in rows) / 60
    assert c.accuracy == pytest.approx(1 - c.false_pass - c.false_fail - c.no_decision)
    assert c.pass_rate == np.mean(res.decision == "pass")


def test_exposure_and_overlap_against_pairwise_counts():
    # fixed-length tests: the overlap rate formula equals the mean pairwise share of common items
    bank = synthetic_bank(80, rng=1)
    design = ExamDesign(min_length=12, max_length=12, exposure={"randomesque": 6}, content={"method": "none"})
    res = simulate_cat(design, bank, thetas=np.random.default_rng(2).normal(0, 1, 40), seed=4)
    r = exposure_rates(res, len(bank))
    sets = [set(res.items_of(n).tolist()) for n in range(40)]
    assert r.tolist() == [sum(i in s for s in sets) / 40 for i in range(len(bank))]
    pairwise = np.mean([len(a & b) / 12 for a, b in itertools.combinations(sets, 2)])
    assert overlap_rate(res, len(bank)) == pytest.approx(pairwise, rel=1e-12)
