"""Domain subscores in the candidate's report (adaptive.bank.subscores, adaptive.cat.report).

Reference for the subscores: the posterior mean and SD of the six-dimensional θ given the candidate's scored
answers, under the subscore model's M3PL items and N(0, Σ) prior, by plain Monte Carlo in this file (1,000,000
prior draws, likelihood weights; the M3PL written out here) -- independent of the engine's importance-sampled
quasi-Monte Carlo points around the MAP. The third case is a strong candidate (θ = 2), where points drawn from the
prior would be few near the posterior."""

import json
import re

import numpy as np
import pytest

from adaptive.bank import ItemBank
from adaptive.bank.multidim import MultidimBank
from adaptive.cat import ExamDesign, Session
from adaptive.exceptions import BankValidationError, DesignError
from adaptive.resources import pool_path

ROOT_POOL = pool_path("cmcs").parents[4] / "item_pools" / "cmcs"


@pytest.fixture(scope="module")
def cmcs():
    pool = pool_path("cmcs")
    return ItemBank.load(pool), ExamDesign.load(pool / "design.json")


def _run(design, bank, seed, theta):
    s = Session.start(design, bank, seed=seed)
    rng = np.random.default_rng(seed)
    while (item := s.next_item()) is not None:
        it = bank.items[bank.index[item]]
        p = it.c + (1 - it.c) / (1 + np.exp(-it.a * (theta - it.b)))
        s.answer(item, int(rng.random() < p), 60.0)
    return s


def _monte_carlo_posterior(sub: MultidimBank, answers: dict, draws=1_000_000, seed=5):
    rows = {r["item_id"]: r for r in sub.rows()}
    k = sub.n_dims
    rng = np.random.default_rng(seed)
    theta = rng.multivariate_normal(np.zeros(k), sub.latent_cov, draws)
    loglik = np.zeros(draws)
    for iid, x in answers.items():
        r = rows[iid]
        z = theta @ np.array([r[f"a{q + 1}"] for q in range(k)]) + r["d"]
        p = r["g"] + (1 - r["g"]) / (1 + np.exp(-z))
        loglik += np.log(p if x else 1 - p)
    w = np.exp(loglik - loglik.max())
    w /= w.sum()
    mean = w @ theta
    sd = np.sqrt(w @ (theta - mean) ** 2)
    return mean, sd


@pytest.mark.parametrize("seed, theta", [(3, -0.4), (4, 0.9), (7, 2.0)])
def test_subscores_are_the_multidimensional_posterior_of_the_scored_answers(cmcs, seed, theta):
    bank, design = cmcs
    sub = bank.subscores.bank
    s = _run(design, bank, seed, theta)
    res = s.result()
    answers = {i: r for i, r, pre in zip(res.items, res.responses, res.pretest, strict=True) if not pre}
    mean, sd = _monte_carlo_posterior(sub, answers)
    report = s.domain_report()
    assert [d.domain for d in report] == list(sub.factor_names)
    for q, d in enumerate(report):
        assert d.subscore == pytest.approx(mean[q], abs=0.015)   # 2,048 points around the MAP against 10^6 draws
        assert d.subscore_se == pytest.approx(sd[q], abs=0.015)
        assert d.reliability == pytest.approx(1 - d.subscore_se ** 2 / sub.latent_cov[q, q], abs=1e-12)
        assert d.scaled_subscore == design.scale.to_scaled(d.subscore)
        assert d.scaled_subscore_se == pytest.approx(d.subscore_se * design.scale.slope)
        k, cut = design.report.near_se, design.theta_cut
        if d.n_items >= design.report.min_domain_items:  # the level follows the subscore's interval
            lo, hi = d.subscore - k * d.subscore_se, d.subscore + k * d.subscore_se
            assert d.level == ("above" if lo > cut else "below" if hi < cut else "near")
        assert set(d.to_dict()) >= {"subscore", "subscore_se", "reliability", "scaled_subscore"}
    # borrowing strength: a subscore is more precise than the domain's answers alone
    assert all(d.subscore_se < d.se for d in report if d.se is not None)


def test_a_bank_without_a_subscore_model_reports_no_subscores(cmcs):
    bank, design = cmcs
    plain = bank.with_subscores(None)
    report = _run(design, plain, 3, 0.0).domain_report()
    assert all(d.subscore is None and "subscore" not in d.to_dict() for d in report)


def test_subscore_model_round_trips_and_loads_from_the_pool_directory(cmcs, tmp_path):
    bank, _ = cmcs
    again = ItemBank(**json.loads(bank.to_json()))
    assert again.fingerprint() == bank.fingerprint()
    np.testing.assert_array_equal(again.subscores.bank.phi, bank.subscores.bank.phi)
    # the pool directory and the bundled copy carry the same file
    assert (pool_path("cmcs") / "subscores.json").read_text() == (ROOT_POOL / "subscores.json").read_text()


def test_subscore_models_that_do_not_fit_the_bank_are_refused_by_item_and_field(cmcs, tmp_path):
    bank, _ = cmcs
    doc = json.loads((pool_path("cmcs") / "subscores.json").read_text())
    base = json.loads(bank.with_subscores(None).to_json())
    cases = [
        ({**doc, "factors": ["Coding", *doc["factors"][1:]]}, "factor 'Coding': not a content domain"),
        ({**doc, "items": doc["items"][1:]}, f"operational items ['{doc['items'][0]['item_id']}']"),
        ({**doc, "items": [*doc["items"], {**doc["items"][0], "item_id": "NEW-1"}]}, "items ['NEW-1'] are not in"),
        ({**doc, "items": [{**doc["items"][0], "a1": "x"}, *doc["items"][1:]]}, "field 'a1': expected a number"),
        ({**doc, "method": "ml"}, "subscores, field 'method'"),
    ]
    for sub, message in cases:
        with pytest.raises(BankValidationError, match=re.escape(message)):
            ItemBank(**{**base, "subscores": sub})
    with pytest.raises(BankValidationError, match="give a MultidimBank"):
        bank.with_subscores("subscores.json")
    with pytest.raises(BankValidationError, match="field 'method'"):
        bank.with_subscores(bank.subscores.bank, method="ml")
    (tmp_path / "bank.json").write_text(bank.with_subscores(None).to_json())
    (tmp_path / "subscores.json").write_text(json.dumps({**doc, "latent_cov": [[2.0]]}))
    with pytest.raises(BankValidationError) as err:
        ItemBank.load(tmp_path)
    assert "subscores.json" in str(err.value)


def test_the_logistic_fast_path_equals_the_general_log_likelihood(cmcs):
    """The importance sampler's M2PL/M3PL shortcut against the model layer's log_prob for every category."""
    from adaptive.scoring.multidim import _Given, _logistic_loglik

    sub = cmcs[0].subscores.bank
    rng = np.random.default_rng(8)
    values = np.where(rng.random((5, len(sub))) < 0.4, (rng.random((5, len(sub))) < 0.6).astype(float), np.nan)
    given = _Given(sub, values)
    pts = rng.normal(0, 1.5, (5, 7, sub.n_dims))
    fast = _logistic_loglik(sub, given, np.arange(5), pts)
    slow = given.take(np.repeat(np.arange(5), 7)).loglik(pts.reshape(-1, sub.n_dims)).reshape(5, 7)
    np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-12)


def test_reported_subscores_are_calibrated_on_simulees_with_known_domain_abilities(cmcs):
    """The exam as delivered, 400 simulees drawn from the subscore model: the reported intervals hold the true
    domain ability about 95% of the time, the stated reliability is the empirical one, and the subscores
    predict each domain better than the total score and the domain's own answers do."""
    from adaptive.simulation.reported_subscores import reported_subscores

    bank, design = cmcs
    res = reported_subscores(design, bank, n=400, seed=4)
    assert np.all(np.abs(res.coverage - 0.95) < 0.035)               # binomial SD at 400: 0.011
    assert np.all(np.abs(res.reported_reliability - res.empirical_reliability) < 0.06)
    assert np.all(np.abs(res.bias) < 0.08)
    assert np.all(res.empirical_reliability > res.prmse_total) and np.all(res.empirical_reliability >
                                                                          res.prmse_domain_alone)
    with pytest.raises(DesignError, match="no subscore model"):
        reported_subscores(design, bank.with_subscores(None), n=10)


def test_bank_check_reports_the_subscore_model_and_its_problems(tmp_path, capsys):
    from adaptive.cli import main

    assert main(["bank", "check", str(pool_path("cmcs"))]) == 0
    assert "subscore model: 97 items on 6 domain factors" in capsys.readouterr().out
    for name in ("bank.json", "design.json", "standard.json"):
        (tmp_path / name).write_text((pool_path("cmcs") / name).read_text())
    doc = json.loads((pool_path("cmcs") / "subscores.json").read_text())
    (tmp_path / "subscores.json").write_text(json.dumps({**doc, "factors": ["Coding", *doc["factors"][1:]]}))
    assert main(["bank", "check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "factor 'Coding': not a content domain" in out and "Traceback" not in out


def test_the_candidate_sees_subscores_only_on_a_scale_or_with_theta(cmcs):
    """No reporting scale and no θ for candidates: no subscore, so no reliability without one either."""
    from adaptive.service.views import candidate_result

    bank, design = cmcs
    s = _run(design, bank, 3, 0.2)
    r = s.result()
    full = {"decision": r.decision, "scaled_score": r.scaled_score, "p_pass": r.p_pass, "theta": r.theta, "se": r.se,
            "stopped_by": r.stopped_by, "n_scored": r.n_scored, "n_answered": len(r.items),
            "domains": [d.to_dict() for d in s.domain_report()]}
    scaled = candidate_result(full, design)["domains"][0]
    assert set(scaled) == {"domain", "n_items", "level", "scaled_subscore", "scaled_subscore_se", "reliability"}
    stopping = {k: v for k, v in design.stopping.model_dump(exclude_none=True).items() if k != "classification"}
    bare = ExamDesign.from_dict({**design.model_dump(exclude_none=True), "scale": None,
                                 "stopping": {**stopping, "se_target": 0.3}})
    assert set(candidate_result(full, bare)["domains"][0]) == {"domain", "n_items", "level"}
