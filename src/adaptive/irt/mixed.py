"""One call for a bank that mixes families, on both sides of the model layer.

θ side: items as struct-of-arrays IRT parameters (see :class:`adaptive.irt.arrays.ItemArrays`):
``family[I]`` (:class:`~adaptive.irt.registry.Family`), ``a[I]``, ``thresholds[I, K-1]`` (``b`` in
column 0 for dichotomous items, NaN padding), ``c[I]``, ``d[I]`` and ``n_cat[I]``; results have shape
``S + (I, K)`` with ``K = max(n_cat)``.

Estimation side: items as internal vectors ``phi (I, p)`` (see :mod:`adaptive.irt.registry`);
:func:`internal_log_prob_and_grad` gives ``log P (I, Q, K)`` and its gradient in ``phi``
``(I, Q, K, p)``; :func:`to_irt`, :func:`from_irt` and :func:`irt_jacobian` convert.

Each family module does the work; this module only splits the items by family and scatters the results.
"""

from __future__ import annotations

import numpy as np

from . import dichotomous, graded, partial_credit
from ._terms import LOG_ZERO, LogProbTerms
from .registry import Family

__all__ = ["terms", "internal_log_prob_and_grad", "internal_log_prob", "internal_affine", "to_irt", "from_irt",
           "irt_jacobian"]


def _family_terms(code, theta, a, thr, c, d, n_cat):
    if code == Family.DICHOTOMOUS:
        return dichotomous.terms(theta, a, thr[:, 0], c, d)
    if code == Family.GRADED:
        return graded.terms(theta, a, thr, n_cat)
    return partial_credit.terms(theta, a, thr, n_cat)


def _groups(family):
    family = np.asarray(family)
    return [(Family(int(code)), np.flatnonzero(family == code)) for code in np.unique(family)]


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
        for dst, src in zip(out, (tm.log_prob, tm.dlog_prob, tm.d2log_prob), strict=True):
            dst[..., idx, :k_g] = src
    return LogProbTerms(*out)


# --------------------------------------------------------------------------- estimation side


def internal_log_prob_and_grad(family, n_cat, phi, theta, need_grad=True):
    """``log P`` ``(I, Q, K)`` and, if asked, ``d log P / d phi`` ``(I, Q, K, p)`` (``p = phi.shape[1]``)."""
    family = np.asarray(family)
    n_cat = np.asarray(n_cat)
    theta = np.asarray(theta, dtype=float)
    phi = np.asarray(phi, dtype=float)
    n_i, p = phi.shape
    k_max = int(n_cat.max())
    logp = np.full((n_i, theta.size, k_max), LOG_ZERO)
    grad = np.zeros((n_i, theta.size, k_max, p)) if need_grad else None
    for fam, idx in _groups(family):
        whole = idx.size == n_i
        sub = phi if whole else phi[idx]
        if fam == Family.DICHOTOMOUS:
            lp, g = dichotomous.internal_log_prob(sub, theta, need_grad)
        else:
            module = graded if fam == Family.GRADED else partial_credit
            lp, g = module.internal_log_prob(sub, n_cat[idx], theta, int(n_cat[idx].max()), need_grad)
        kg, pg = lp.shape[2], (g.shape[3] if g is not None else 0)
        if whole and kg == k_max and pg == p:
            logp, grad = lp, g
            continue
        logp[idx, :, :kg] = lp
        if grad is not None and g is not None:
            grad[idx, :, :kg, :pg] = g
    return logp, grad


def internal_log_prob(family, n_cat, phi, theta) -> np.ndarray:
    """``log P`` ``(I, Q, K)`` from internal parameters."""
    return internal_log_prob_and_grad(family, n_cat, phi, theta, need_grad=False)[0]


def internal_affine(family, n_cat, phi, mu: float, sd: float) -> np.ndarray:
    """Internal parameters of the same response functions on ``θ'`` where ``θ = mu + sd θ'`` (each family's
    ``internal_affine``): what a latent N(mu, sd²) becomes when the scale is moved back to N(0, 1)."""
    family, n_cat = np.asarray(family), np.asarray(n_cat)
    out = np.array(phi, dtype=float)
    for fam, idx in _groups(family):
        if fam == Family.DICHOTOMOUS:
            out[idx] = dichotomous.internal_affine(phi[idx], mu, sd)
        else:
            module = graded if fam == Family.GRADED else partial_credit
            out[idx] = module.internal_affine(phi[idx], n_cat[idx], mu, sd)
    return out


def to_irt(family, n_cat, phi):
    """IRT parameters ``(a, thresholds (I, K-1), c, d)`` from internal ``phi``."""
    family, n_cat = np.asarray(family), np.asarray(n_cat)
    n_i = phi.shape[0]
    k_max = max(int(n_cat.max()), 2)
    a = phi[:, 0].copy()
    thr = np.full((n_i, k_max - 1), np.nan)
    c, d = np.zeros(n_i), np.ones(n_i)
    for fam, idx in _groups(family):
        if fam == Family.DICHOTOMOUS:
            _, thr[idx, 0], c[idx], d[idx] = dichotomous.to_irt(phi[idx])
        else:
            module = graded if fam == Family.GRADED else partial_credit
            thr[idx] = module.to_irt(phi[idx], n_cat[idx], k_max)
    return a, thr, c, d


def from_irt(family, n_cat, a, thresholds, c, d, p):
    """Internal ``phi (I, p)`` from IRT parameters (inverse of :func:`to_irt`)."""
    family, n_cat = np.asarray(family), np.asarray(n_cat)
    a = np.asarray(a, dtype=float)
    thr = np.atleast_2d(np.asarray(thresholds, dtype=float))
    c, d = np.broadcast_to(np.asarray(c, dtype=float), a.shape), np.broadcast_to(np.asarray(d, dtype=float), a.shape)
    phi = np.zeros((family.size, p))
    for fam, idx in _groups(family):
        if fam == Family.DICHOTOMOUS:
            phi[idx, :4] = dichotomous.from_irt(a[idx], thr[idx, 0], c[idx], d[idx])
        else:
            module = graded if fam == Family.GRADED else partial_credit
            phi[idx, 0] = a[idx]
            k = int(n_cat[idx].max()) - 1
            phi[idx, 1:k + 1] = module.from_irt(a[idx], thr[idx, :k], n_cat[idx])
    return phi


def irt_jacobian(family, n_cat, phi):
    """``J[i, r, j] = d irt_r / d phi_j`` per item, IRT vector ``[a, t_1..t_{p-1}, c, d]`` of length ``p + 2``
    (``t_1 = b`` for dichotomous items)."""
    family, n_cat = np.asarray(family), np.asarray(n_cat)
    n_i, p = phi.shape
    jac = np.zeros((n_i, p + 2, p))
    for fam, idx in _groups(family):
        if fam == Family.DICHOTOMOUS:
            j4 = dichotomous.irt_jacobian(phi[idx, :4])  # rows a, b, c, d
            rows = np.array([0, 1, p, p + 1])
            jac[np.ix_(idx, rows, np.arange(4))] = j4
        else:
            module = graded if fam == Family.GRADED else partial_credit
            jac[idx, :p, :] = module.irt_jacobian(phi[idx], n_cat[idx], p)
    return jac
