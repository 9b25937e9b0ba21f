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

Estimation side: ``phi = [a, delta_1 .. delta_{K-1}]`` with
``P(X >= k) = expit(a θ + delta_k)`` (mirt's graded ``a1, d1..``), ``b_k = -delta_k / a``.

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

from ._terms import LOG_ZERO, LogProbTerms, as_theta, location_jacobian_start
from .dichotomous import Z_CLIP

__all__ = ["terms", "prob", "log_prob", "information", "prob_derivatives", "internal_log_prob", "internal_affine",
           "to_irt", "from_irt", "irt_jacobian"]


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


# --------------------------------------------------------------------------- estimation side (internal phi)


def internal_log_prob(phi: np.ndarray, n_cat: np.ndarray, theta: np.ndarray, k_max: int, need_grad: bool = True):
    """``log P`` ``(I, Q, K)`` and, if asked, its gradient in ``phi = [a, delta_1..]`` ``(I, Q, K, K)``."""
    n_i = phi.shape[0]
    a = phi[:, 0, None, None]
    delta = phi[:, 1:k_max]  # (I, K-1); padding beyond n_cat - 1 ignored
    valid_cut = np.arange(1, k_max)[None, :] < n_cat[:, None]  # cut k exists
    z = np.clip(a * theta[None, :, None] + np.where(valid_cut, delta, 0.0)[:, None, :], -Z_CLIP, Z_CLIP)
    ls, lc = log_expit(z), log_expit(-z)  # (I, Q, K-1)
    gaps = np.where(valid_cut[:, 1:], delta[:, :-1] - delta[:, 1:], 1.0)  # delta_k - delta_{k+1} > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        lgap = np.log(-np.expm1(-gaps))  # log(1 - exp(-(delta_k - delta_{k+1}))); NaN when out of order
    logp = np.full((n_i, theta.size, k_max), LOG_ZERO)
    logp[:, :, 0] = lc[:, :, 0]
    if k_max > 2:
        mid = ls[:, :, :-1] + lc[:, :, 1:] + lgap[:, None, :]  # categories 1..K-2 when they are interior
        logp[:, :, 1:-1] = mid
    last = n_cat - 1  # the top category of each item: log P(X >= K_i - 1)
    rows = np.arange(n_i)
    logp[rows, :, last] = ls[rows, :, last - 1]
    beyond = np.arange(k_max)[None, :] >= n_cat[:, None]
    logp[np.broadcast_to(beyond[:, None, :], logp.shape)] = LOG_ZERO
    if not need_grad:
        return logp, None
    lw = ls + lc  # log of w_k = P*_k (1 - P*_k), cuts 1..K-1
    lw = np.where(valid_cut[:, None, :], lw, -np.inf)
    neg = np.full((n_i, theta.size, 1), -np.inf)
    lw_lo = np.concatenate([neg, lw], axis=2)  # w_k for category k (cut k at its lower edge), k=0..K-1
    lw_hi = np.concatenate([lw, neg], axis=2)  # w_{k+1} (cut at its upper edge)
    with np.errstate(over="ignore", invalid="ignore"):
        r_lo = np.where(beyond[:, None, :], 0.0, np.exp(lw_lo - logp))
        r_hi = np.where(beyond[:, None, :], 0.0, np.exp(lw_hi - logp))
    grad = np.zeros((n_i, theta.size, k_max, k_max))
    grad[..., 0] = theta[None, :, None] * (r_lo - r_hi)
    kk = np.arange(k_max)
    # d/d delta_k of log pi_k = r_lo (k >= 1); d/d delta_{k+1} of log pi_k = -r_hi
    grad[:, :, kk[1:], kk[1:]] = r_lo[:, :, 1:]
    grad[:, :, kk[:-1], kk[:-1] + 1] = -r_hi[:, :, :-1]
    return logp, grad


def internal_affine(phi: np.ndarray, n_cat: np.ndarray, mu: float, sd: float) -> np.ndarray:
    """The same response functions on ``θ'`` where ``θ = mu + sd θ'``: slope ``a sd``, every cut
    ``delta_k + a mu``; entries beyond an item's categories stay as they are."""
    p = phi.shape[1]
    out = np.array(phi, dtype=float)
    valid = np.arange(1, p)[None, :] < np.asarray(n_cat)[:, None]
    out[:, 1:] += np.where(valid, phi[:, :1] * mu, 0.0)
    out[:, 0] *= sd
    return out


def to_irt(phi: np.ndarray, n_cat: np.ndarray, k_max: int) -> np.ndarray:
    """Thresholds ``b_k = -delta_k / a`` ``(I, k_max - 1)`` (NaN beyond each item's categories)."""
    t = -phi[:, 1:k_max] / phi[:, 0, None]
    t[np.arange(k_max - 1)[None, :] >= (n_cat[:, None] - 1)] = np.nan
    return t


def from_irt(a: np.ndarray, thresholds: np.ndarray, n_cat: np.ndarray) -> np.ndarray:
    """``delta_k = -a b_k`` ``(I, K-1)`` (0 beyond each item's categories)."""
    k = np.arange(thresholds.shape[1])[None, :] < (n_cat[:, None] - 1)
    return np.where(k, -a[:, None] * np.nan_to_num(thresholds), 0.0)


def irt_jacobian(phi: np.ndarray, n_cat: np.ndarray, p: int) -> np.ndarray:
    """``J[i, r, j] = d irt_r / d phi_j`` ``(I, p, p)`` with the IRT vector ``[a, b_1 .. b_{p-1}]``."""
    jac, a, m, has = location_jacobian_start(phi, n_cat, p)
    jac[:, m, 0] = np.where(has, phi[:, 1:p] / a[:, None] ** 2, 0.0)
    jac[:, m, m] = np.where(has, -1.0 / a[:, None], 0.0)
    return jac
