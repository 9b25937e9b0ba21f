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
from ..irt._terms import LogProbTerms
from .estimators import maximum_a_posteriori, maximum_likelihood, weighted_likelihood
from .responses import SparseResponses

__all__ = ["terms_at", "LongEstimate", "estimate_theta", "estimating_term", "sparse"]

#: ability bounds of the estimators (an all-correct ML pattern ends at the upper bound)
THETA_BOUND = 6.0


def terms_at(arrays, theta, item) -> LogProbTerms:
    """``log P``, ``∂θ log P`` and ``∂²θ log P`` of item ``item[r]`` at ability ``theta[r]``: ``(R, K)`` each."""
    return arrays.terms_at(theta, item)


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
