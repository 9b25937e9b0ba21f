"""Dichotomous models: Rasch/1PL, 2PL, 3PL and 4PL.

.. math::

    P(X = 1 \\mid \\theta) = c + \\frac{d - c}{1 + \\exp(-a(\\theta - b))}

with slope ``a > 0``, difficulty ``b``, lower asymptote ``0 <= c`` and upper
asymptote ``d <= 1`` (Barton & Lord 1981). Rasch/1PL/2PL are the special
cases ``c = 0, d = 1``; the 3PL has ``d = 1``. The slope is on the logistic
metric; a bank that declares the normal-ogive scaling ``D = 1.702`` passes
``a * D`` here.

A dichotomous item is a 2-category item: category 0 is "wrong", 1 "right",
so every array has a trailing category axis of length 2.

Examples
--------
>>> import numpy as np
>>> from adaptive.irt import dichotomous
>>> p = dichotomous.prob(np.array([0.0]), a=[1.0], b=[0.0], c=[0.2], d=[1.0])
>>> p.shape, round(float(p[0, 0, 1]), 3)
((1, 1, 2), 0.6)
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, log_expit

from ._terms import LogProbTerms, as_theta, safe_log

__all__ = ["terms", "prob", "log_prob", "information", "information_3pl", "prob_derivatives",
           "log_prob_param_grad", "PARAMETERS"]

#: order of the parameters along the last axis of :func:`log_prob_param_grad`.
PARAMETERS = ("a", "b", "c", "d")


def _prepare(theta, a, b, c, d):
    t = as_theta(theta)
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    c = np.broadcast_to(np.asarray(c, dtype=float), a.shape)
    d = np.broadcast_to(np.asarray(d, dtype=float), a.shape)
    z = a * (t - b)
    log_psi = log_expit(z)
    log_1m_psi = log_expit(-z)
    log_dc = safe_log(d - c)
    log_p1 = np.logaddexp(safe_log(c), log_dc + log_psi)
    log_p0 = np.logaddexp(safe_log(1.0 - d), log_dc + log_1m_psi)
    # log of (d - c) psi (1 - psi) = P'(theta) / a
    log_g = log_dc + log_psi + log_1m_psi
    return t, a, b, c, d, z, log_psi, log_1m_psi, log_p0, log_p1, log_g


def terms(theta, a, b, c=0.0, d=1.0) -> LogProbTerms:
    """Log-probabilities of (wrong, right) and their θ-derivatives.

    Parameters
    ----------
    theta : array_like, shape ``S``
    a, b, c, d : array_like, shape ``(I,)``

    Returns
    -------
    LogProbTerms
        arrays of shape ``S + (I, 2)``.

    Notes
    -----
    With :math:`\\psi = \\text{expit}(a(\\theta-b))`,
    :math:`\\partial\\log P_1 = a(d-c)\\psi(1-\\psi)/P_1`,
    :math:`\\partial\\log P_0 = -a(d-c)\\psi(1-\\psi)/P_0` and
    :math:`\\partial^2\\log P_k = a(1-2\\psi)\\,\\partial\\log P_k - (\\partial\\log P_k)^2`,
    all evaluated through logarithms.
    """
    t, a, b, c, d, z, log_psi, log_1m_psi, log_p0, log_p1, log_g = _prepare(theta, a, b, c, d)
    g1 = a * np.exp(log_g - log_p1)
    g0 = -a * np.exp(log_g - log_p0)
    curv = a * (1.0 - 2.0 * expit(z))
    log_p = np.stack([log_p0, log_p1], axis=-1)
    dlog = np.stack([g0, g1], axis=-1)
    d2log = curv[..., None] * dlog - dlog**2
    return LogProbTerms(log_p, dlog, d2log)


def prob(theta, a, b, c=0.0, d=1.0) -> np.ndarray:
    """Category probabilities ``[P(X=0), P(X=1)]``, shape ``S + (I, 2)``."""
    return terms(theta, a, b, c, d).prob


def log_prob(theta, a, b, c=0.0, d=1.0) -> np.ndarray:
    """Category log-probabilities, shape ``S + (I, 2)``."""
    return terms(theta, a, b, c, d).log_prob


def information(theta, a, b, c=0.0, d=1.0) -> np.ndarray:
    """Item Fisher information :math:`P'^2 / (PQ)`, shape ``S + (I,)``.

    For the 3PL this is Birnbaum's
    :math:`a^2 \\frac{Q}{P}\\left(\\frac{P-c}{1-c}\\right)^2` (Lord 1980, eq. 5.19).
    """
    return terms(theta, a, b, c, d).information


def information_3pl(theta, a, b, c) -> np.ndarray:
    """Fisher information of 3PL items (d = 1) in closed form, broadcasting ``theta`` against the parameters.

    Written stably as :math:`a^2 (1-c)\\,\\psi(1-\\psi)\\,\\psi/P` with
    :math:`\\psi = \\sigma(a(\\theta-b))` and :math:`P = c + (1-c)\\psi`, which equals Birnbaum's
    :math:`a^2\\frac{Q}{P}(\\frac{P-c}{1-c})^2` (Lord 1980, eq. 5.19). This is the fast path
    exact maximum-information selection evaluates; :func:`information` is the general one.
    """
    e = np.exp(-np.clip(a * (theta - b), -40.0, 40.0))  # e = (1 - psi) / psi
    psi = 1.0 / (1.0 + e)
    return a * a * (1.0 - c) * e * psi * psi * psi / (c + (1.0 - c) * psi)


def prob_derivatives(theta, a, b, c=0.0, d=1.0) -> tuple[np.ndarray, np.ndarray]:
    """First and second θ-derivatives of the category probabilities, each ``S + (I, 2)``."""
    tm = terms(theta, a, b, c, d)
    return tm.dprob, tm.d2prob


def log_prob_param_grad(theta, a, b, c=0.0, d=1.0) -> np.ndarray:
    """Gradient of the category log-probabilities in the item parameters.

    Returns
    -------
    ndarray, shape ``S + (I, 2, 4)``
        ``[..., k, j]`` is :math:`\\partial \\log P_k / \\partial p_j` with
        ``p = (a, b, c, d)`` (see :data:`PARAMETERS`).
    """
    t, a, b, c, d, z, log_psi, log_1m_psi, log_p0, log_p1, log_g = _prepare(theta, a, b, c, d)
    r1 = np.exp(log_g - log_p1)  # (d-c) psi (1-psi) / P1
    r0 = np.exp(log_g - log_p0)
    dev = t - b
    grad1 = np.stack([dev * r1, -a * r1, np.exp(log_1m_psi - log_p1), np.exp(log_psi - log_p1)], axis=-1)
    grad0 = np.stack([-dev * r0, a * r0, -np.exp(log_1m_psi - log_p0), -np.exp(log_psi - log_p0)], axis=-1)
    return np.stack([grad0, grad1], axis=-2)
