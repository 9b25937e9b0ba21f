"""Ability estimates on long-format records (one row per answer): what item analysis and the security
statistics score adaptive data with, vectorized over answers.

The estimates are those of :mod:`adaptive.scoring` (ML, WLE, MAP: global maximum over a search grid, then a
bracketed Newton step), run on :class:`~adaptive.scoring.responses.SparseResponses`, so no persons × items
matrix is built.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..answers import Records
from .estimators import maximum_a_posteriori, maximum_likelihood, weighted_likelihood
from .responses import SparseResponses

__all__ = ["LongEstimate", "estimate_theta", "estimating_term", "sparse", "loglik_moments"]

#: ability bounds of the estimators (an all-correct ML pattern ends at the upper bound)
THETA_BOUND = 6.0


def sparse(rec: Records) -> SparseResponses:
    """The records as the estimators' sparse responses."""
    return SparseResponses(rec.person, rec.item, rec.category, rec.n_persons, rec.n_items)


@dataclass(frozen=True)
class LongEstimate:
    """Ability estimates of ``N`` persons from long-format records.

    Attributes
    ----------
    theta, se : ``(N,)`` -- estimate and SE (NaN for a person with no answers)
    method : "ml", "wle" or "map"
    """

    theta: np.ndarray
    se: np.ndarray
    method: str


def loglik_moments(log_prob, category, person, n: int, weights=None):
    """Per person, ``W = Σ_r (log P_{r,x_r} - Σ_k P_rk log P_rk)`` -- the log-likelihood of the answers minus its
    expectation -- and the variance of ``Σ_r Σ_k x_rk w_rk`` with ``w = log P`` (or ``weights``, e.g. Snijders'
    corrected weights), from answer rows: ``log_prob (R, K)`` at each person's θ, ``category (R,)``,
    ``person (R,)``. The parts of lz and lz* (Drasgow et al. 1985; Snijders 2001), shared by the calibration's
    person fit and the security statistics."""
    p = np.exp(log_prob)
    chosen = np.take_along_axis(log_prob, np.asarray(category)[:, None], axis=1)[:, 0]
    big_w = np.bincount(person, weights=chosen - (p * log_prob).sum(axis=1), minlength=n)
    w = log_prob if weights is None else weights
    mean_w = (p * w).sum(axis=1)
    var = np.bincount(person, weights=(p * w ** 2).sum(axis=1) - mean_w ** 2, minlength=n)
    return big_w, var


def estimating_term(method: str, theta, info, jay, prior_mean: float = 0.0, prior_sd: float = 1.0):
    """Snijders' ``r_0(θ)``: what the estimator adds to the likelihood equation ``Σ score + r_0 = 0``.

    ML: 0; WLE (Warm 1989): ``J / (2 I)``; MAP with a N(μ, σ²) prior: ``-(θ - μ)/σ²``.
    """
    if method == "ml":
        return np.zeros_like(theta)
    if method == "wle":
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(info > 0, jay / (2.0 * np.maximum(info, 1e-300)), 0.0)
    return -(theta - prior_mean) / prior_sd ** 2


def estimate_theta(arrays, rec: Records, method: str = "wle", *, prior_mean: float = 0.0,
                   prior_sd: float = 1.0) -> LongEstimate:
    """ML, WLE or MAP abilities (bounded at ±6) of every person of ``rec``."""
    resp = sparse(rec)
    bounds = (-THETA_BOUND, THETA_BOUND)
    if method == "ml":
        est = maximum_likelihood(arrays, resp, bounds=bounds)
    elif method == "wle":
        est = weighted_likelihood(arrays, resp, bounds=bounds)
    elif method == "map":
        est = maximum_a_posteriori(arrays, resp, prior_mean=prior_mean, prior_sd=prior_sd, bounds=bounds)
    else:
        raise ValueError(f"method {method!r}: use 'ml', 'wle' or 'map'")
    answered = resp.n_answered > 0
    return LongEstimate(theta=np.where(answered, est.theta, np.nan), se=np.where(answered, est.se, np.nan),
                        method=method)
