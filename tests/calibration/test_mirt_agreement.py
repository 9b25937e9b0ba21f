"""Agreement with R's mirt 1.45.1 on the five reference sets (61 points on [-6, 6], TOL 1e-4, no priors).

Source: the project's shared reference folder, calibration/ (data, mirt's estimates and logLik in
mirt_runs.jsonl), copied to tests/data/calibration. The likelihood itself is checked first: at mirt's own
estimates our marginal log-likelihood equals mirt's reported logLik, so both programs maximize the same
function and any remaining difference is where each one stops.
"""

from __future__ import annotations

import numpy as np
import pytest

import adaptive
from adaptive.irt.mixed import from_irt, internal_log_prob

pytestmark = pytest.mark.reference

SETS = {
    "2pl_5000x50": "2pl",
    "2pl_20000x100": "2pl",
    "2pl_20000x200_miss70": "2pl",
    "3pl_10000x60": "3pl",
    "grm_3000x20": "graded",
}


def _mirt_arrays(mirt, model):
    a = np.array([float(r["a"]) for r in mirt])
    if model == "graded":
        thr = np.array([[float(r[f"b{k}"]) for k in (1, 2, 3)] for r in mirt])
        c = np.zeros(a.size)
    else:
        thr = np.array([[float(r["b"])] for r in mirt])
        c = np.array([float(r["c"]) for r in mirt])
    return a, thr, c


def _loglik_at(result, a, thr, c):
    pr = result.fitted.problem
    phi = from_irt(pr.family, pr.n_cat, a, thr, c, np.ones(a.size), pr.params.phi0.shape[1])
    return pr.posterior(internal_log_prob(pr.family, pr.n_cat, phi, pr.theta), np.array([[0.0, 1.0]]))[1]


@pytest.fixture(scope="module")
def fits(ref_sets):
    out = {}
    for name, model in SETS.items():
        ids, x, mirt, truth, run = ref_sets(name)
        out[name] = (adaptive.calibrate(x, model=model, item_ids=ids), mirt, truth, run)
    return out


@pytest.mark.parametrize("name", list(SETS))
def test_same_likelihood_function_as_mirt(fits, name):
    res, mirt, _, run = fits[name]
    a, thr, c = _mirt_arrays(mirt, SETS[name])
    assert _loglik_at(res, a, thr, c) == pytest.approx(run["logLik"], abs=2e-3)


@pytest.mark.parametrize("name", ["2pl_5000x50", "2pl_20000x100", "2pl_20000x200_miss70"])
def test_2pl_sets_match_mirt(fits, name):
    res, mirt, _, run = fits[name]
    assert res.converged
    assert res.loglik == pytest.approx(run["logLik"], abs=0.01)
    a, thr, _ = _mirt_arrays(mirt, "2pl")
    assert np.max(np.abs(res.a - a)) < 0.005
    assert np.max(np.abs(res.thresholds[:, 0] - thr[:, 0])) < 0.005
    d_ours = -res.a * res.thresholds[:, 0]
    d_mirt = np.array([float(r["d"]) for r in mirt])
    assert np.max(np.abs(d_ours - d_mirt)) < 0.005


def test_grm_matches_mirt_and_reaches_a_higher_maximum(fits):
    """mirt stopped 0.036 log-likelihood units below the maximum (18 EM cycles); we stop at the maximum.

    Our log-likelihood is within 0.05 of mirt's and not below it; at mirt's estimates it is exactly mirt's value
    (test above), so the gap is mirt's stopping point, not a different objective. Parameters agree within 0.01.
    """
    res, mirt, _, run = fits["grm_3000x20"]
    assert res.converged
    assert run["logLik"] - 1e-3 <= res.loglik <= run["logLik"] + 0.05
    a, thr, _ = _mirt_arrays(mirt, "graded")
    assert np.max(np.abs(res.a - a)) < 0.012
    assert np.max(np.abs(res.thresholds[:, :3] - thr)) < 0.012


def test_3pl_matches_mirt_loglik_and_parameters(fits):
    """3PL without priors, as mirt ran it: log-likelihood within 0.05 (ours is higher: mirt's EM stopped on
    the flat c ridge after 334 cycles); a within 0.02 everywhere; b and c within 0.02 for the items whose
    likelihood is not flat along c, and the expected-score curves of every item within 0.01."""
    res, mirt, _, run = fits["3pl_10000x60"]
    assert res.converged
    assert run["logLik"] - 1e-3 <= res.loglik <= run["logLik"] + 0.05
    a, thr, c = _mirt_arrays(mirt, "3pl")
    assert np.max(np.abs(res.a - a)) < 0.02
    close = np.abs(res.thresholds[:, 0] - thr[:, 0]) < 0.02
    assert close.mean() >= 0.9
    assert np.mean(np.abs(res.c - c) < 0.02) >= 0.95
    grid = np.linspace(-3, 3, 61)[:, None]

    def icc(aa, bb, cc):
        return cc + (1 - cc) / (1 + np.exp(-aa * (grid - bb)))

    gap = np.abs(icc(res.a, res.thresholds[:, 0], res.c) - icc(a, thr[:, 0], c)).max()
    assert gap < 0.01


@pytest.mark.parametrize("name", list(SETS))
def test_recovery_no_worse_than_mirt(fits, name):
    """RMSE against the generating parameters, compared with mirt's RMSE in mirt_runs.jsonl."""
    res, _, truth, run = fits[name]
    a_true = np.array([float(r["a"]) for r in truth])
    rmse_a = np.sqrt(np.mean((res.a - a_true) ** 2))
    if SETS[name] == "graded":
        b_true = np.array([[float(r[f"b{k}"]) for k in (1, 2, 3)] for r in truth])
        rmse_b = np.sqrt(np.mean((res.thresholds[:, :3] - b_true) ** 2))
    else:
        b_true = np.array([float(r["b"]) for r in truth])
        rmse_b = np.sqrt(np.mean((res.thresholds[:, 0] - b_true) ** 2))
    # 3PL by ML: mirt's unconverged EM (stopped on the flat c ridge, near its start values) acts like mild
    # shrinkage, so the exact ML estimate is up to ~5% farther from the truth; with a c prior (next test) ours is
    # closer than mirt's on every parameter
    slack = 1.05 if SETS[name] == "3pl" else 1.02
    assert rmse_a <= run["rmse_a"] * slack + 1e-3
    assert rmse_b <= run["rmse_b"] * slack + 1e-3
    if "rmse_c" in run:
        c_true = np.array([float(r["c"]) for r in truth])
        assert np.sqrt(np.mean((res.c - c_true) ** 2)) <= run["rmse_c"] * slack + 1e-3


def test_3pl_with_a_guessing_prior_recovers_better_than_mirt(ref_sets):
    ids, x, _, truth, run = ref_sets("3pl_10000x60")
    res = adaptive.calibrate(x, model="3pl", item_ids=ids, priors={"c": "beta(5, 17)"})
    true = {k: np.array([float(r[k]) for r in truth]) for k in "abc"}
    est = {"a": res.a, "b": res.thresholds[:, 0], "c": res.c}
    for k in "abc":
        assert np.sqrt(np.mean((est[k] - true[k]) ** 2)) < run[f"rmse_{k}"]
