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

Estimation side: the internal vector ``phi = [a, delta, gamma, omega]`` with
``P1 = c + (u - c) expit(a θ + delta)``, ``c = expit(gamma)``, ``u = expit(omega)``
(mirt's ``a1, d, g, u``); :func:`internal_log_prob` gives log-probabilities and their
gradient in ``phi`` for rows of ``phi`` and nodes ``theta``, and :func:`to_irt` /
:func:`from_irt` convert.

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
from scipy.special import expit, log_expit, logit

from ._terms import LogProbTerms, as_theta, safe_log

__all__ = ["terms", "prob", "log_prob", "information", "information_3pl", "prob_derivatives", "internal_affine",
           "Z_CLIP", "internal_z", "internal_parts", "internal_log_prob", "internal_weighted_hessian", "to_irt",
           "from_irt", "irt_jacobian"]

#: ``|a θ + delta|`` beyond this changes no probability by more than 1e-21
Z_CLIP = 50.0


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


# --------------------------------------------------------------------------- estimation side (internal phi)


def internal_z(phi: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """``z = a θ + delta`` ``(I, Q)`` of rows ``phi = [a, delta, ...]``, clipped to ``±Z_CLIP``."""
    return np.clip(phi[:, 0, None] * theta[None, :] + phi[:, 1, None], -Z_CLIP, Z_CLIP)


def internal_parts(phi: np.ndarray, theta: np.ndarray):
    """``z``, ``s = expit(z)``, ``1 - s``, ``c``, ``u`` and ``log P1``, ``log P0`` ``(I, Q)`` of rows
    ``phi = [a, delta, gamma, omega]``; rows without asymptotes (c = 0, u = 1) get ``log_expit(±z)``."""
    z = internal_z(phi, theta)
    s, sc = expit(z), expit(-z)
    c, u = expit(phi[:, 2, None]), expit(phi[:, 3, None])
    plain = (c == 0.0) & (u == 1.0)
    if plain.all():  # 2PL rows only (calibration's common case): skip the asymptote forms
        # log of expit on |z| <= Z_CLIP: expit is accurate to an ulp in both tails, so the log is accurate to
        # ~1e-16 absolute (what likelihood sums need), at a third of scipy's log_expit cost
        return z, s, sc, c, u, np.log(s), np.log(sc)
    with np.errstate(divide="ignore"):
        lp1, lp0 = np.log(c + (u - c) * s), np.log((1.0 - u) + (u - c) * sc)
    if plain.any():
        lp1, lp0 = np.where(plain, log_expit(z), lp1), np.where(plain, log_expit(-z), lp0)
    return z, s, sc, c, u, lp1, lp0


def internal_log_prob(phi: np.ndarray, theta: np.ndarray, need_grad: bool = True):
    """``log P`` ``(I, Q, 2)`` and, if asked, its gradient in ``phi`` ``(I, Q, 2, 4)``."""
    _, s, sc, c, u, lp1, lp0 = internal_parts(phi, theta)
    plain = (c == 0.0) & (u == 1.0)
    logp = np.stack([lp0, lp1], axis=-1)
    if not need_grad:
        return logp, None
    p1, p0 = np.exp(lp1), np.exp(lp0)
    # d log P1 / dz = (u - c) s sc / P1, written so that no ratio is 0/0
    t1 = np.where(plain, 1.0, (u - c) * s / p1)
    t0 = np.where(plain, 1.0, (u - c) * sc / p0)
    g1z, g0z = sc * t1, -s * t0
    g1c, g0c = c * (1 - c) * sc / p1, -c * (1 - c) * sc / p0
    g1u, g0u = u * (1 - u) * s / p1, -u * (1 - u) * s / p0
    th = theta[None, :]
    grad = np.stack([
        np.stack([g0z * th, g0z, g0c, g0u], axis=-1),
        np.stack([g1z * th, g1z, g1c, g1u], axis=-1),
    ], axis=-2)  # (I, Q, 2, 4)
    return logp, grad


def internal_affine(phi: np.ndarray, mu: float, sd: float) -> np.ndarray:
    """The same response functions on ``θ'`` where ``θ = mu + sd θ'``: ``a sd`` and ``delta + a mu``; the
    asymptotes do not move."""
    out = np.array(phi, dtype=float)
    out[:, 1] += phi[:, 0] * mu
    out[:, 0] *= sd
    return out


def internal_weighted_hessian(parts, theta: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``sum_q weights[i, q] * d2 P1 / dphi dphi^T`` ``(I, 4, 4)`` for ``phi = [a, delta, gamma, omega]``
    (``P0 = 1 - P1``) from ``parts = internal_parts(phi, theta)``, without forming the ``(I, Q, 4, 4)``
    array of second derivatives.

    With ``w = s (1 - s)``: ``d2P/dz2 = (u - c) w (1 - 2 s)``, ``d2P/dz dgamma = -c (1 - c) w``,
    ``d2P/dz domega = u (1 - u) w``, ``d2P/dgamma2 = c (1 - c)(1 - 2 c)(1 - s)``,
    ``d2P/domega2 = u (1 - u)(1 - 2 u) s``, ``d2P/dgamma domega = 0``; ``dz/da = θ``, ``dz/ddelta = 1``.
    """
    _, s, sc, c, u, _, _ = parts
    w = s * sc
    t_zz, t_zc, t_zu = weights * (u - c) * w * (sc - s), -weights * c * (1 - c) * w, weights * u * (1 - u) * w
    h = np.zeros((s.shape[0], 4, 4))
    h[:, 0, 0], h[:, 0, 1], h[:, 1, 1] = t_zz @ (theta * theta), t_zz @ theta, t_zz.sum(axis=1)
    h[:, 0, 2], h[:, 1, 2] = t_zc @ theta, t_zc.sum(axis=1)
    h[:, 0, 3], h[:, 1, 3] = t_zu @ theta, t_zu.sum(axis=1)
    h[:, 2, 2] = (weights * c * (1 - c) * (1 - 2 * c) * sc).sum(axis=1)
    h[:, 3, 3] = (weights * u * (1 - u) * (1 - 2 * u) * s).sum(axis=1)
    return h + np.triu(h, 1).transpose(0, 2, 1)  # the lower triangle mirrors the upper


def to_irt(phi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``a, b, c, d`` from rows ``phi = [a, delta, gamma, omega]``: ``b = -delta / a``."""
    return phi[:, 0].copy(), -phi[:, 1] / phi[:, 0], expit(phi[:, 2]), expit(phi[:, 3])


def from_irt(a, b, c, d) -> np.ndarray:
    """Rows ``phi (I, 4)`` from IRT parameters (inverse of :func:`to_irt`)."""
    a = np.asarray(a, dtype=float)
    phi = np.zeros((a.size, 4))
    phi[:, 0] = a
    phi[:, 1] = -a * np.asarray(b, dtype=float)
    with np.errstate(divide="ignore"):
        phi[:, 2] = logit(np.asarray(c, dtype=float))
        phi[:, 3] = logit(np.asarray(d, dtype=float))
    return phi


def irt_jacobian(phi: np.ndarray) -> np.ndarray:
    """``J[i, r, j] = d irt_r / d phi_j`` ``(I, 4, 4)`` with the IRT vector ``[a, b, c, d]``."""
    a = phi[:, 0]
    c, u = expit(phi[:, 2]), expit(phi[:, 3])
    jac = np.zeros((phi.shape[0], 4, 4))
    jac[:, 0, 0] = 1.0
    jac[:, 1, 0] = phi[:, 1] / a**2
    jac[:, 1, 1] = -1.0 / a
    jac[:, 2, 2] = c * (1 - c)
    jac[:, 3, 3] = u * (1 - u)
    return jac
