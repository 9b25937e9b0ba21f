"""Item models in the internal (slope-intercept) parameterization used for estimation.

DESIGN.md convention 4: estimation works on unconstrained parameters and
users see IRT parameters. Per item the internal vector ``phi`` is

=============  ==========================================================  ==========================
family         ``phi``                                                      category probabilities
=============  ==========================================================  ==========================
dichotomous    ``[a, delta, gamma, omega]``: ``c = expit(gamma)``,         ``P1 = c + (u - c) expit(a θ + delta)``
               ``u = expit(omega)`` (upper asymptote)
graded         ``[a, delta_1 .. delta_{K-1}]``, delta decreasing            ``P(X >= k) = expit(a θ + delta_k)``
gpcm / pcm     ``[a, d_1 .. d_{K-1}]`` (``d_0 = 0``)                        ``P(X = k) ∝ exp(k a θ + d_k)``
=============  ==========================================================  ==========================

These are mirt's ``a1, d, g, u`` / graded ``d_k`` / gpcm ``d_k`` forms, so
estimates compare one to one. Every function is vectorized over items (rows
of ``phi``) and quadrature points; padding categories carry ``LOG_ZERO``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, log_expit, logit, logsumexp

from ..irt._terms import LOG_ZERO

__all__ = ["DICH", "GRADED", "GPCM", "FAMILY_OF", "n_internal", "log_prob", "log_prob_and_grad", "dich_z",
           "dich_parts", "dich_weighted_hessian", "to_irt", "from_irt", "irt_jacobian"]

DICH, GRADED, GPCM = 0, 1, 2
FAMILY_OF = {"rasch": DICH, "1pl": DICH, "2pl": DICH, "3pl": DICH, "4pl": DICH,
             "graded": GRADED, "gpcm": GPCM, "pcm": GPCM}
_Z_CLIP = 50.0  # |a θ + delta| beyond this changes no probability by more than 1e-21


def n_internal(family: int, n_cat: int) -> int:
    """Length of ``phi`` for one item."""
    return 4 if family == DICH else n_cat


# ------------------------------------------------------------------ per family


def dich_z(phi, theta):
    """``z = a θ + delta`` ``(I, Q)`` of dichotomous rows, clipped to ``±_Z_CLIP``."""
    return np.clip(phi[:, 0, None] * theta[None, :] + phi[:, 1, None], -_Z_CLIP, _Z_CLIP)


def dich_parts(phi, theta):
    """``z``, ``s = expit(z)``, ``1 - s``, ``c``, ``u`` and ``log P1``, ``log P0`` ``(I, Q)`` of dichotomous rows
    ``phi = [a, delta, gamma, omega]``; rows without asymptotes (c = 0, u = 1) get ``log_expit(±z)``."""
    z = dich_z(phi, theta)
    s, sc = expit(z), expit(-z)
    c, u = expit(phi[:, 2, None]), expit(phi[:, 3, None])
    plain = (c == 0.0) & (u == 1.0)
    with np.errstate(divide="ignore"):
        lp1, lp0 = np.log(c + (u - c) * s), np.log((1.0 - u) + (u - c) * sc)
    if plain.any():
        lp1, lp0 = np.where(plain, log_expit(z), lp1), np.where(plain, log_expit(-z), lp0)
    return z, s, sc, c, u, lp1, lp0


def _dich(phi, theta, need_grad):
    _, s, sc, c, u, lp1, lp0 = dich_parts(phi, theta)
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


def _graded(phi, n_cat, theta, k_max, need_grad):
    n_i = phi.shape[0]
    a = phi[:, 0, None, None]
    delta = phi[:, 1:k_max]  # (I, K-1); padding beyond n_cat - 1 ignored
    valid_cut = np.arange(1, k_max)[None, :] < n_cat[:, None]  # cut k exists
    z = np.clip(a * theta[None, :, None] + np.where(valid_cut, delta, 0.0)[:, None, :], -_Z_CLIP, _Z_CLIP)
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


def _gpcm(phi, n_cat, theta, k_max, need_grad):
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


def log_prob_and_grad(family, n_cat, phi, theta, need_grad=True):
    """``log π`` ``(I, Q, K)`` and, if asked, ``∂ log π / ∂ phi`` ``(I, Q, K, p)`` (``p = phi.shape[1]``)."""
    family = np.asarray(family)
    n_cat = np.asarray(n_cat)
    theta = np.asarray(theta, dtype=float)
    phi = np.asarray(phi, dtype=float)
    n_i, p = phi.shape
    k_max = int(n_cat.max())
    logp = np.full((n_i, theta.size, k_max), LOG_ZERO)
    grad = np.zeros((n_i, theta.size, k_max, p)) if need_grad else None
    for fam in np.unique(family):
        idx = np.flatnonzero(family == fam)
        whole = idx.size == n_i
        sub = phi if whole else phi[idx]
        if fam == DICH:
            lp, g = _dich(sub, theta, need_grad)
        elif fam == GRADED:
            kg = int(n_cat[idx].max())
            lp, g = _graded(sub, n_cat[idx], theta, kg, need_grad)
        else:
            kg = int(n_cat[idx].max())
            lp, g = _gpcm(sub, n_cat[idx], theta, kg, need_grad)
        kg, pg = lp.shape[2], (g.shape[3] if g is not None else 0)
        if whole and kg == k_max and pg == p:
            logp, grad = lp, g
            continue
        logp[idx, :, :kg] = lp
        if need_grad:
            grad[idx, :, :kg, :pg] = g
    return logp, grad


def dich_weighted_hessian(parts, theta, weights):
    """``sum_q weights[i, q] * d2 P1 / dphi dphi^T`` ``(I, 4, 4)`` for ``phi = [a, delta, gamma, omega]``
    (``P0 = 1 - P1``) from ``parts = dich_parts(phi, theta)``, without forming the ``(I, Q, 4, 4)`` array of
    second derivatives.

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


def log_prob(family, n_cat, phi, theta):
    return log_prob_and_grad(family, n_cat, phi, theta, need_grad=False)[0]


# ------------------------------------------------------------------ conversions


def to_irt(family, n_cat, phi):
    """IRT parameters ``(a, thresholds (I, K-1), c, d)`` from internal ``phi``.

    Dichotomous: ``b = -delta / a`` in threshold column 0. Graded: ``b_k = -delta_k / a``.
    GPCM: step ``b_k = -(d_k - d_{k-1}) / a``.
    """
    family, n_cat = np.asarray(family), np.asarray(n_cat)
    a = phi[:, 0].copy()
    k_max = max(int(n_cat.max()), 2)
    thr = np.full((phi.shape[0], k_max - 1), np.nan)
    c = np.zeros(phi.shape[0])
    d = np.ones(phi.shape[0])
    dich = family == DICH
    if dich.any():
        thr[dich, 0] = -phi[dich, 1] / a[dich]
        c[dich] = expit(phi[dich, 2])
        d[dich] = expit(phi[dich, 3])
    for fam in (GRADED, GPCM):
        idx = np.flatnonzero(family == fam)
        if idx.size == 0:
            continue
        dd = phi[idx, 1:k_max]
        if fam == GRADED:
            t = -dd / a[idx, None]
        else:
            prev = np.concatenate([np.zeros((idx.size, 1)), dd[:, :-1]], axis=1)
            t = -(dd - prev) / a[idx, None]
        t[np.arange(k_max - 1)[None, :] >= (n_cat[idx, None] - 1)] = np.nan
        thr[idx] = t
    return a, thr, c, d


def from_irt(family, n_cat, a, thresholds, c, d, p):
    """Internal ``phi (I, p)`` from IRT parameters (inverse of :func:`to_irt`)."""
    family, n_cat = np.asarray(family), np.asarray(n_cat)
    n_i = family.size
    phi = np.zeros((n_i, p))
    phi[:, 0] = a
    thr = np.atleast_2d(np.asarray(thresholds, dtype=float))
    dich = family == DICH
    if dich.any():
        phi[dich, 1] = -a[dich] * thr[dich, 0]
        with np.errstate(divide="ignore"):
            phi[dich, 2] = logit(np.asarray(c, dtype=float)[dich])
            phi[dich, 3] = logit(np.asarray(d, dtype=float)[dich])
    for fam in (GRADED, GPCM):
        idx = np.flatnonzero(family == fam)
        for i in idx:
            k = int(n_cat[i]) - 1
            t = thr[i, :k]
            phi[i, 1:k + 1] = -a[i] * t if fam == GRADED else -a[i] * np.cumsum(t)
    return phi


def irt_jacobian(family, n_cat, phi):
    """``J[i, r, j] = ∂ irt_r / ∂ phi_j`` per item, IRT vector ``[a, t_1..t_{K-1}, c, d]`` of length ``p + 2``."""
    family, n_cat = np.asarray(family), np.asarray(n_cat)
    n_i, p = phi.shape
    jac = np.zeros((n_i, p + 2, p))
    a = phi[:, 0]
    jac[:, 0, 0] = 1.0
    for i in range(n_i):  # tiny per-item blocks, only for reporting standard errors
        k = int(n_cat[i]) - 1
        if family[i] == DICH:
            jac[i, 1, 0] = phi[i, 1] / a[i] ** 2
            jac[i, 1, 1] = -1.0 / a[i]
            c, u = expit(phi[i, 2]), expit(phi[i, 3])
            jac[i, p, 2] = c * (1 - c)
            jac[i, p + 1, 3] = u * (1 - u)
        elif family[i] == GRADED:
            for m in range(1, k + 1):
                jac[i, m, 0] = phi[i, m] / a[i] ** 2
                jac[i, m, m] = -1.0 / a[i]
        else:
            for m in range(1, k + 1):
                prev = phi[i, m - 1] if m > 1 else 0.0
                jac[i, m, 0] = (phi[i, m] - prev) / a[i] ** 2
                jac[i, m, m] = -1.0 / a[i]
                if m > 1:
                    jac[i, m, m - 1] = 1.0 / a[i]
    return jac
