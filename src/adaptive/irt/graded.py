"""Samejima's graded response model (GRM).

.. math::

    P^*_k(\\theta) = P(X \\ge k \\mid \\theta) = \\frac{1}{1 + \\exp(-a(\\theta - b_k))},
    \\quad k = 1, \\dots, K-1,

with :math:`P^*_0 = 1`, :math:`P^*_K = 0` and :math:`P_k = P^*_k - P^*_{k+1}`
(Samejima 1969). Thresholds must be strictly increasing.

Each category probability is computed in log space from the identity
:math:`\\sigma(x) - \\sigma(y) = \\sigma(x)\\sigma(-y)(1 - e^{y - x})`, so

.. math::

    \\log P_k = \\log\\sigma(z_k) + \\log\\sigma(-z_{k+1}) + \\log(1 - e^{-a(b_{k+1} - b_k)}),

which never cancels catastrophically; and
:math:`\\partial_\\theta \\log P_k = a(1 - P^*_k - P^*_{k+1})`,
:math:`\\partial^2_\\theta \\log P_k = -a^2(P^*_k Q^*_k + P^*_{k+1} Q^*_{k+1})`.

Items with fewer categories than the widest item are padded: their unused
thresholds are NaN and ``n_cat`` says how many categories each item has.

Examples
--------
>>> import numpy as np
>>> from adaptive.irt import graded
>>> p = graded.prob(0.0, a=[1.0], thresholds=[[-1.0, 0.0, 1.0]])
>>> np.round(p, 3)
array([[0.269, 0.231, 0.231, 0.269]])
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_expit

from ._terms import LOG_ZERO, LogProbTerms, as_theta

__all__ = ["terms", "prob", "log_prob", "information", "prob_derivatives", "log_prob_param_grad"]


def _layout(a, thresholds, n_cat):
    a = np.asarray(a, dtype=float)
    thr = np.atleast_2d(np.asarray(thresholds, dtype=float))
    n_items, n_thr = thr.shape
    a = np.broadcast_to(a, (n_items,))
    if n_cat is None:
        n_cat = np.full(n_items, n_thr + 1)
    n_cat = np.asarray(n_cat)
    k = np.arange(n_thr + 1)
    valid = k < n_cat[:, None]  # (I, K): categories the item has
    # extended thresholds b_0 = -inf, b_1..b_{n-1}, b_n.. = +inf
    ext = np.empty((n_items, n_thr + 2))
    ext[:, 0] = -np.inf
    ext[:, 1:-1] = np.where(k[1:] < n_cat[:, None], thr, np.inf)
    ext[:, -1] = np.inf
    return a, ext, valid


def _cumulative(theta, a, ext):
    """log P*_k and log(1 - P*_k) for k = 0..K, shape S + (I, K+1)."""
    t = as_theta(theta)[..., None]  # S + (1, 1)
    with np.errstate(invalid="ignore"):
        z = a[:, None] * (t - ext)
    return z, log_expit(z), log_expit(-z)


def _log_prob(theta, a, ext, valid):
    z, log_s, log_q = _cumulative(theta, a, ext)
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = a[:, None] * np.diff(ext, axis=-1)  # a (b_{k+1} - b_k) > 0, inf at the ends (NaN in padding)
        log_gap = np.log(-np.expm1(-gap))  # accurate for tiny gaps too
        log_p = log_s[..., :-1] + log_q[..., 1:] + log_gap
    log_p = np.where(valid, log_p, LOG_ZERO)
    return log_p, log_s, log_q


def terms(theta, a, thresholds, n_cat=None) -> LogProbTerms:
    """Log category probabilities and their θ-derivatives, shape ``S + (I, K)``.

    Parameters
    ----------
    theta : array_like, shape ``S``
    a : array_like, shape ``(I,)``
    thresholds : array_like, shape ``(I, K-1)``, increasing along each row (NaN padding allowed)
    n_cat : array_like of int, shape ``(I,)``, optional
    """
    a, ext, valid = _layout(a, thresholds, n_cat)
    log_p, log_s, log_q = _log_prob(theta, a, ext, valid)
    s = np.exp(log_s)
    h = np.exp(log_s + log_q)  # P*(1-P*)
    dlog = a[:, None] * (1.0 - s[..., :-1] - s[..., 1:])
    d2log = -(a**2)[:, None] * (h[..., :-1] + h[..., 1:])
    dlog = np.where(valid, dlog, 0.0)
    d2log = np.where(valid, d2log, 0.0)
    return LogProbTerms(log_p, dlog, d2log)


def prob(theta, a, thresholds, n_cat=None) -> np.ndarray:
    """Category probabilities, shape ``S + (I, K)``."""
    return terms(theta, a, thresholds, n_cat).prob


def log_prob(theta, a, thresholds, n_cat=None) -> np.ndarray:
    """Category log-probabilities, shape ``S + (I, K)``."""
    return terms(theta, a, thresholds, n_cat).log_prob


def information(theta, a, thresholds, n_cat=None) -> np.ndarray:
    """Item Fisher information :math:`\\sum_k P_k'^2/P_k`, shape ``S + (I,)``."""
    return terms(theta, a, thresholds, n_cat).information


def prob_derivatives(theta, a, thresholds, n_cat=None) -> tuple[np.ndarray, np.ndarray]:
    """First and second θ-derivatives of the category probabilities."""
    tm = terms(theta, a, thresholds, n_cat)
    return tm.dprob, tm.d2prob


def log_prob_param_grad(theta, a, thresholds, n_cat=None) -> np.ndarray:
    """Gradient of :math:`\\log P_k` in ``(a, b_1, ..., b_{K-1})``.

    Returns
    -------
    ndarray, shape ``S + (I, K, K)``
        ``[..., k, 0]`` is :math:`\\partial\\log P_k/\\partial a`, ``[..., k, j]``
        is :math:`\\partial\\log P_k/\\partial b_j`. Padded entries are 0.

    Notes
    -----
    With :math:`h_j = P^*_j(1 - P^*_j)`:
    :math:`\\partial_a \\log P_k = [h_k(\\theta - b_k) - h_{k+1}(\\theta - b_{k+1})]/P_k`,
    :math:`\\partial_{b_k} \\log P_k = -a h_k / P_k`,
    :math:`\\partial_{b_{k+1}} \\log P_k = a h_{k+1} / P_k`.
    """
    a, ext, valid = _layout(a, thresholds, n_cat)
    log_p, log_s, log_q = _log_prob(theta, a, ext, valid)
    t = as_theta(theta)[..., None]
    n_items, n_k = valid.shape
    interior = np.isfinite(ext)  # (I, K+1): thresholds that exist
    with np.errstate(invalid="ignore"):
        dev = np.where(interior, t - ext, 0.0)
    log_h = np.where(interior, log_s + log_q, -np.inf)
    lower = np.where(valid, np.exp(log_h[..., :-1] - log_p), 0.0)  # h_k / P_k
    upper = np.where(valid, np.exp(log_h[..., 1:] - log_p), 0.0)  # h_{k+1} / P_k
    grad = np.zeros(log_p.shape + (n_k,))
    grad[..., 0] = lower * dev[..., :-1] - upper * dev[..., 1:]
    a_col = a[:, None]
    kk = np.arange(n_k)
    # d/db_k for k >= 1 (column k), d/db_{k+1} (column k+1)
    grad[..., kk[1:], kk[1:]] = -a_col[:, :1] * lower[..., 1:]
    grad[..., kk[:-1], kk[1:]] = a_col[:, :1] * upper[..., :-1]
    return grad
