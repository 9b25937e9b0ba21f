"""Generalized partial credit model (GPCM; Muraki 1992) and the partial credit model (PCM; Masters 1982).

.. math::

    P_k(\\theta) = \\frac{\\exp\\sum_{v=1}^{k} a(\\theta - b_v)}
                        {\\sum_{j=0}^{K-1}\\exp\\sum_{v=1}^{j} a(\\theta - b_v)},
    \\quad k = 0, \\dots, K-1,

with step parameters :math:`b_v` (not necessarily ordered). The PCM is the
GPCM with ``a = 1``. Writing :math:`\\eta_k = a(k\\theta - B_k)`,
:math:`B_k = \\sum_{v \\le k} b_v`, the log-probabilities are
:math:`\\eta_k - \\operatorname{logsumexp}(\\eta)`, and

.. math::

    \\partial_\\theta\\log P_k = a(k - E[X]),\\qquad
    \\partial^2_\\theta\\log P_k = -a^2\\operatorname{Var}[X],\\qquad
    I(\\theta) = a^2 \\operatorname{Var}[X].

Estimation side: ``phi = [a, d_1 .. d_{K-1}]`` (``d_0 = 0``) with
``P(X = k) ∝ exp(k a θ + d_k)`` (mirt's gpcm ``a1, d0..``), steps ``b_k = -(d_k - d_{k-1}) / a``.

Examples
--------
>>> import numpy as np
>>> from adaptive.irt import partial_credit
>>> p = partial_credit.prob(0.0, a=[1.0], steps=[[0.0, 0.0]])
>>> np.round(p, 4)
array([[0.3333, 0.3333, 0.3333]])
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from ._terms import LOG_ZERO, LogProbTerms, as_theta, location_jacobian_start

__all__ = ["terms", "prob", "log_prob", "information", "prob_derivatives", "internal_log_prob", "internal_affine",
           "to_irt", "from_irt", "irt_jacobian"]


def _log_prob(theta, a, steps, n_cat):
    a = np.asarray(a, dtype=float)
    st = np.atleast_2d(np.asarray(steps, dtype=float))
    n_items, n_steps = st.shape
    a = np.broadcast_to(a, (n_items,))
    if n_cat is None:
        n_cat = np.full(n_items, n_steps + 1)
    k = np.arange(n_steps + 1, dtype=float)
    valid = k < np.asarray(n_cat)[:, None]
    cum = np.zeros((n_items, n_steps + 1))
    cum[:, 1:] = np.cumsum(np.where(valid[:, 1:], st, 0.0), axis=1)
    t = as_theta(theta)[..., None]
    score = k * t - cum  # S + (I, K): k theta - B_k
    eta = np.where(valid, a[:, None] * score, -np.inf)
    log_p = eta - logsumexp(eta, axis=-1, keepdims=True)
    prob = np.where(valid, np.exp(log_p), 0.0)
    log_p = np.where(valid, log_p, LOG_ZERO)
    return a, k, valid, score, log_p, prob


def terms(theta, a, steps, n_cat=None) -> LogProbTerms:
    """Log category probabilities and their θ-derivatives, shape ``S + (I, K)``.

    Parameters
    ----------
    theta : array_like, shape ``S``
    a : array_like, shape ``(I,)`` (ones for the PCM)
    steps : array_like, shape ``(I, K-1)`` (NaN padding allowed)
    n_cat : array_like of int, shape ``(I,)``, optional
    """
    a, k, valid, score, log_p, prob = _log_prob(theta, a, steps, n_cat)
    mean = np.einsum("...k,k->...", prob, k)[..., None]
    var = np.einsum("...k,k->...", prob, k * k)[..., None] - mean**2
    var = np.maximum(var, 0.0)
    dlog = np.where(valid, a[:, None] * (k - mean), 0.0)
    d2log = np.where(valid, -(a**2)[:, None] * var, 0.0)
    return LogProbTerms(log_p, dlog, d2log)


def prob(theta, a, steps, n_cat=None) -> np.ndarray:
    """Category probabilities, shape ``S + (I, K)``."""
    return terms(theta, a, steps, n_cat).prob


def log_prob(theta, a, steps, n_cat=None) -> np.ndarray:
    """Category log-probabilities, shape ``S + (I, K)``."""
    return terms(theta, a, steps, n_cat).log_prob


def information(theta, a, steps, n_cat=None) -> np.ndarray:
    """Item Fisher information :math:`a^2 \\operatorname{Var}[X\\mid\\theta]`, shape ``S + (I,)``."""
    return terms(theta, a, steps, n_cat).information


def prob_derivatives(theta, a, steps, n_cat=None) -> tuple[np.ndarray, np.ndarray]:
    """First and second θ-derivatives of the category probabilities."""
    tm = terms(theta, a, steps, n_cat)
    return tm.dprob, tm.d2prob


# --------------------------------------------------------------------------- estimation side (internal phi)


def internal_log_prob(phi: np.ndarray, n_cat: np.ndarray, theta: np.ndarray, k_max: int, need_grad: bool = True):
    """``log P`` ``(I, Q, K)`` and, if asked, its gradient in ``phi = [a, d_1..]`` ``(I, Q, K, K)``."""
    kk = np.arange(k_max)
    valid = kk[None, :] < n_cat[:, None]  # (I, K)
    d = np.concatenate([np.zeros((phi.shape[0], 1)), phi[:, 1:k_max]], axis=1)
    eta = phi[:, 0, None, None] * theta[None, :, None] * kk[None, None, :] + d[:, None, :]
    eta = np.where(valid[:, None, :], eta, -np.inf)
    logp = eta - logsumexp(eta, axis=2, keepdims=True)
    logp = np.where(valid[:, None, :], logp, LOG_ZERO)
    if not need_grad:
        return logp, None
    p = np.where(valid[:, None, :], np.exp(logp), 0.0)
    mean_k = (p * kk).sum(axis=2, keepdims=True)
    grad = np.zeros(logp.shape + (k_max,))
    grad[..., 0] = theta[None, :, None] * (kk[None, None, :] - mean_k)
    grad[..., 1:] = -p[:, :, None, 1:]  # d log pi_k / d d_j = [k = j] - pi_j
    grad[:, :, kk[1:], kk[1:]] += 1.0
    grad *= valid[:, None, :, None]
    return logp, grad


def internal_affine(phi: np.ndarray, n_cat: np.ndarray, mu: float, sd: float) -> np.ndarray:
    """The same response functions on ``θ'`` where ``θ = mu + sd θ'``: slope ``a sd``, steps
    ``d_k + k a mu`` (category k's predictor is ``k a θ + d_k``); entries beyond an item's categories stay."""
    p = phi.shape[1]
    out = np.array(phi, dtype=float)
    valid = np.arange(1, p)[None, :] < np.asarray(n_cat)[:, None]
    out[:, 1:] += np.where(valid, phi[:, :1] * mu * np.arange(1, p)[None, :], 0.0)
    out[:, 0] *= sd
    return out


def to_irt(phi: np.ndarray, n_cat: np.ndarray, k_max: int) -> np.ndarray:
    """Steps ``b_k = -(d_k - d_{k-1}) / a`` ``(I, k_max - 1)`` (NaN beyond each item's categories)."""
    dd = phi[:, 1:k_max]
    prev = np.concatenate([np.zeros((phi.shape[0], 1)), dd[:, :-1]], axis=1)
    t = -(dd - prev) / phi[:, 0, None]
    t[np.arange(k_max - 1)[None, :] >= (n_cat[:, None] - 1)] = np.nan
    return t


def from_irt(a: np.ndarray, steps: np.ndarray, n_cat: np.ndarray) -> np.ndarray:
    """``d_k = -a (b_1 + .. + b_k)`` ``(I, K-1)`` (0 beyond each item's categories)."""
    k = np.arange(steps.shape[1])[None, :] < (n_cat[:, None] - 1)
    return np.where(k, -a[:, None] * np.cumsum(np.where(k, steps, 0.0), axis=1), 0.0)


def irt_jacobian(phi: np.ndarray, n_cat: np.ndarray, p: int) -> np.ndarray:
    """``J[i, r, j] = d irt_r / d phi_j`` ``(I, p, p)`` with the IRT vector ``[a, b_1 .. b_{p-1}]``."""
    jac, a, m, has = location_jacobian_start(phi, n_cat, p)
    prev = np.concatenate([np.zeros((phi.shape[0], 1)), phi[:, 1:p - 1]], axis=1)
    jac[:, m, 0] = np.where(has, (phi[:, 1:p] - prev) / a[:, None] ** 2, 0.0)
    jac[:, m, m] = np.where(has, -1.0 / a[:, None], 0.0)
    later = has[:, 1:]  # b_m depends on d_{m-1} for m >= 2
    jac[:, m[1:], m[1:] - 1] = np.where(later, 1.0 / a[:, None], 0.0)
    return jac
