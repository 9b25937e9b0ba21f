"""Scoring by summed score: the Lord-Wingersky recursion and EAP[sum] (Thissen et al. 1995)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..irt.arrays import DEFAULT_GRID
from .estimators import _log_prior_on_grid

__all__ = ["sum_score_distribution", "eap_sum_score", "SumScoreTable"]


def sum_score_distribution(tables) -> np.ndarray:
    """Distribution of the summed score at every grid point (Lord & Wingersky 1984).

    Parameters
    ----------
    tables : GridTables of the items that make up the form

    Returns
    -------
    ndarray, ``(Q, S + 1)`` -- ``P(S = s | θ_q)`` for ``s = 0..S``, ``S`` the maximum score.

    Notes
    -----
    The recursion adds one item at a time: with :math:`f_i(s\\mid\\theta)` the
    distribution after ``i`` items, :math:`f_{i+1}(s) = \\sum_k f_i(s - k) P_{i+1,k}`.
    It is vectorized over grid points and scores; the loop over items is the
    recursion itself.
    """
    prob = np.exp(tables.log_prob)  # (I, Q, K); padded categories are exactly 0
    n_items, n_q, n_k = prob.shape
    max_cat = (prob > 0).any(axis=1)  # (I, K)
    top = np.array([int(np.flatnonzero(row).max()) for row in max_cat])
    total = int(top.sum())
    f = np.zeros((n_q, total + 1))
    f[:, 0] = 1.0
    reach = 0
    for i in range(n_items):
        new = np.zeros_like(f)
        for k in range(top[i] + 1):
            new[:, k : reach + k + 1] += f[:, : reach + 1] * prob[i, :, k : k + 1]
        reach += top[i]
        f = new
    return f


@dataclass(frozen=True)
class SumScoreTable:
    """EAP[sum] conversion table: one row per possible summed score.

    Attributes
    ----------
    score : ndarray of int, ``(S + 1,)``
    theta : ndarray -- posterior mean of θ given the summed score
    se : ndarray -- posterior SD
    probability : ndarray -- marginal probability of each score under the prior
    """

    score: np.ndarray
    theta: np.ndarray
    se: np.ndarray
    probability: np.ndarray

    def lookup(self, scores) -> tuple[np.ndarray, np.ndarray]:
        """θ and SE for an array of summed scores."""
        s = np.asarray(scores, dtype=int)
        if np.any((s < 0) | (s > self.score[-1])):
            raise ValueError(f"summed scores must be within 0..{self.score[-1]}")
        return self.theta[s], self.se[s]


def eap_sum_score(arrays, *, grid=DEFAULT_GRID, prior_mean=0.0, prior_sd=1.0, prior=None) -> SumScoreTable:
    """EAP estimates for every summed score of the form made of ``arrays``' items.

    :math:`\\hat\\theta(s) = \\sum_q \\theta_q f(s\\mid\\theta_q) w_q / \\sum_q f(s\\mid\\theta_q) w_q`.
    """
    tables = arrays.tables(grid)
    f = sum_score_distribution(tables)
    log_w = _log_prior_on_grid(tables.theta, prior_mean, prior_sd, prior)
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    joint = f * w[:, None]  # (Q, S+1)
    marg = joint.sum(axis=0)
    post = joint / np.where(marg > 0, marg, 1.0)
    theta = tables.theta @ post
    var = (tables.theta**2) @ post - theta**2
    return SumScoreTable(score=np.arange(f.shape[1]), theta=theta, se=np.sqrt(np.maximum(var, 0.0)), probability=marg)
