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

from ._terms import LOG_ZERO, LogProbTerms, as_theta

__all__ = ["terms", "prob", "log_prob", "information", "prob_derivatives", "log_prob_param_grad"]


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


def log_prob_param_grad(theta, a, steps, n_cat=None) -> np.ndarray:
    """Gradient of :math:`\\log P_k` in ``(a, b_1, ..., b_{K-1})``, shape ``S + (I, K, K)``.

    :math:`\\partial_a\\log P_k = (k\\theta - B_k) - \\sum_j P_j (j\\theta - B_j)` and
    :math:`\\partial_{b_v}\\log P_k = -a([v \\le k] - P(X \\ge v))`.
    """
    a, k, valid, score, log_p, prob = _log_prob(theta, a, steps, n_cat)
    n_k = k.size
    score = np.where(valid, score, 0.0)
    grad = np.zeros(log_p.shape + (n_k,))
    grad[..., 0] = score - np.einsum("...k,...k->...", prob, score)[..., None]
    # P(X >= v) for v = 1..K-1
    tail = np.flip(np.cumsum(np.flip(prob, -1), -1), -1)[..., 1:]  # S + (I, K-1)
    at_least = (np.arange(1, n_k)[None, :] <= np.arange(n_k)[:, None]).astype(float)  # (K, K-1): [v <= k]
    step_grad = -a[:, None, None] * (at_least - tail[..., None, :])
    step_valid = valid[:, None, 1:] & valid[:, :, None]
    grad[..., 1:] = np.where(step_valid, step_grad, 0.0)
    grad[..., 0] = np.where(valid, grad[..., 0], 0.0)
    return grad
