"""One call for a bank that mixes dichotomous, graded and partial-credit items.

Items are described by struct-of-arrays parameters (see
:class:`adaptive.bank.ItemArrays`): ``family[I]`` (:data:`DICHOTOMOUS`,
:data:`GRADED`, :data:`PARTIAL_CREDIT`), ``a[I]``, ``thresholds[I, K-1]``
(``b`` in column 0 for dichotomous items, NaN padding), ``c[I]``, ``d[I]`` and
``n_cat[I]``. Results have shape ``S + (I, K)`` with ``K = max(n_cat)``.
"""

from __future__ import annotations

import numpy as np

from . import dichotomous, graded, partial_credit
from ._terms import LOG_ZERO, LogProbTerms

__all__ = ["DICHOTOMOUS", "GRADED", "PARTIAL_CREDIT", "FAMILY_NAMES", "terms", "log_prob_param_grad"]

DICHOTOMOUS, GRADED, PARTIAL_CREDIT = 0, 1, 2
FAMILY_NAMES = {DICHOTOMOUS: "dichotomous", GRADED: "graded", PARTIAL_CREDIT: "partial_credit"}


def _family_terms(code, theta, a, thr, c, d, n_cat):
    if code == DICHOTOMOUS:
        return dichotomous.terms(theta, a, thr[:, 0], c, d)
    if code == GRADED:
        return graded.terms(theta, a, thr, n_cat)
    return partial_credit.terms(theta, a, thr, n_cat)


def _family_grad(code, theta, a, thr, c, d, n_cat):
    if code == DICHOTOMOUS:
        return dichotomous.log_prob_param_grad(theta, a, thr[:, 0], c, d)
    if code == GRADED:
        return graded.log_prob_param_grad(theta, a, thr, n_cat)
    return partial_credit.log_prob_param_grad(theta, a, thr, n_cat)


def _groups(family):
    family = np.asarray(family)
    codes = np.unique(family)
    return [(int(code), np.flatnonzero(family == code)) for code in codes]


def terms(theta, family, a, thresholds, c, d, n_cat) -> LogProbTerms:
    """Log-probabilities and θ-derivatives for a mixed bank, shape ``S + (I, K)``."""
    thresholds = np.atleast_2d(np.asarray(thresholds, dtype=float))
    n_cat = np.asarray(n_cat)
    n_k = int(n_cat.max())
    groups = _groups(family)
    if len(groups) == 1:  # the common case: no scatter needed
        code, _ = groups[0]
        return _family_terms(code, theta, a, thresholds[:, : n_k - 1], c, d, n_cat)
    shape = np.shape(theta) + (len(n_cat), n_k)
    out = [np.full(shape, LOG_ZERO), np.zeros(shape), np.zeros(shape)]
    a, c, d = (np.asarray(v, dtype=float) for v in (a, c, d))
    for code, idx in groups:
        k_g = int(n_cat[idx].max())
        tm = _family_terms(code, theta, a[idx], thresholds[idx, : k_g - 1], c[idx], d[idx], n_cat[idx])
        for dst, src in zip(out, (tm.log_prob, tm.dlog_prob, tm.d2log_prob)):
            dst[..., idx, :k_g] = src
    return LogProbTerms(*out)


def log_prob_param_grad(theta, family, a, thresholds, c, d, n_cat) -> np.ndarray:
    """Gradient of the log-probabilities in the item parameters for a mixed bank.

    Returns
    -------
    ndarray, shape ``S + (I, K, P)``
        ``P = max(4, K)``; the last axis is ``(a, b, c, d)`` for dichotomous
        items and ``(a, b_1, ..., b_{K-1})`` for polytomous items, zero-padded.
    """
    thresholds = np.atleast_2d(np.asarray(thresholds, dtype=float))
    n_cat = np.asarray(n_cat)
    n_k = int(n_cat.max())
    n_par = max(4, n_k) if np.any(np.asarray(family) == DICHOTOMOUS) else n_k
    out = np.zeros(np.shape(theta) + (len(n_cat), n_k, n_par))
    a, c, d = (np.asarray(v, dtype=float) for v in (a, c, d))
    for code, idx in _groups(family):
        k_g = int(n_cat[idx].max())
        g = _family_grad(code, theta, a[idx], thresholds[idx, : k_g - 1], c[idx], d[idx], n_cat[idx])
        out[..., idx, :k_g, : g.shape[-1]] = g
    return out
