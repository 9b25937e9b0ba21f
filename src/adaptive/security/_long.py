"""Model terms and ability estimates on long-format records (one row per answer), vectorized over answers.

Every response model in :mod:`adaptive.irt` depends on θ only through ``a(θ - b_k)``, so item ``i`` at
ability ``θ_r`` is the item with thresholds ``b_k - θ_r`` at θ = 0. :func:`terms_at` evaluates all ``R``
answers at their own persons' abilities in one call (shape ``(R, K)``), whatever the family mix, with no
persons × items matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..irt import mixed
from ..irt._terms import LogProbTerms
from .records import Records

__all__ = ["terms_at", "LongEstimate", "estimate_theta"]

#: ability bounds of the long-format estimators (an all-correct ML pattern ends at the upper bound)
THETA_BOUND = 6.0


def terms_at(arrays, theta, item) -> LogProbTerms:
    """``log P``, ``∂θ log P`` and ``∂²θ log P`` of item ``item[r]`` at ability ``theta[r]``: ``(R, K)`` each."""
    item = np.asarray(item, dtype=np.int64)
    theta = np.asarray(theta, dtype=float)
    thr = arrays.thresholds[item] - theta[:, None]
    return mixed.terms(0.0, arrays.family[item], arrays.a[item], thr, arrays.c[item], arrays.d[item],
                       arrays.n_cat[item])


@dataclass(frozen=True)
class LongEstimate:
    """Ability estimates of ``N`` persons from long-format records.

    Attributes
    ----------
    theta, se : ``(N,)`` -- estimate and ``1/sqrt(information)`` (NaN for a person with no answers)
    information : ``(N,)`` -- test information at ``theta``
    method : "ml", "wle" or "map"
    """

    theta: np.ndarray
    se: np.ndarray
    information: np.ndarray
    method: str


def _sums(arrays, rec: Records, theta_p, n):
    tm = terms_at(arrays, theta_p[rec.person], rec.item)
    p = np.exp(tm.log_prob)
    chosen = np.take_along_axis(tm.dlog_prob, rec.category[:, None], axis=1)[:, 0]
    info_r = (p * tm.dlog_prob ** 2).sum(axis=1)
    # J = Σ_k P_k' P_k'' / P_k = Σ_k P_k ∂logP_k (∂²logP_k + (∂logP_k)²)
    j_r = (p * tm.dlog_prob * (tm.d2log_prob + tm.dlog_prob ** 2)).sum(axis=1)
    score = np.bincount(rec.person, weights=chosen, minlength=n)
    info = np.bincount(rec.person, weights=info_r, minlength=n)
    jay = np.bincount(rec.person, weights=j_r, minlength=n)
    return score, info, jay


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


def estimate_theta(arrays, rec: Records, method: str = "wle", *, prior_mean: float = 0.0, prior_sd: float = 1.0,
                   tol: float = 1e-8, max_iter: int = 100) -> LongEstimate:
    """ML, WLE or MAP abilities from long-format records, by Fisher scoring vectorized over persons.

    The step is ``(score + r_0) / (I + prior precision)``, capped at 1 logit and kept within ±6; a person whose
    estimating equation has no root inside (an all-correct ML pattern) ends at the bound.
    """
    if method not in ("ml", "wle", "map"):
        raise ValueError(f"method {method!r}: use 'ml', 'wle' or 'map'")
    n = rec.n_persons
    theta = np.zeros(n)
    active = np.ones(n, dtype=bool)
    precision = 1.0 / prior_sd ** 2 if method == "map" else 0.0
    for _ in range(max_iter):
        score, info, jay = _sums(arrays, rec, theta, n)
        eq = score + estimating_term(method, theta, info, jay, prior_mean, prior_sd)
        step = np.clip(eq / np.maximum(info + precision, 1e-8), -1.0, 1.0)
        new = np.clip(theta + np.where(active, step, 0.0), -THETA_BOUND, THETA_BOUND)
        active = np.abs(new - theta) > tol
        theta = new
        if not active.any():
            break
    score, info, jay = _sums(arrays, rec, theta, n)
    answered = rec.answered() > 0
    theta = np.where(answered, theta, np.nan)
    with np.errstate(divide="ignore"):
        se = np.where(answered & (info + precision > 0), 1.0 / np.sqrt(info + precision), np.nan)
    return LongEstimate(theta=theta, se=se, information=info, method=method)
