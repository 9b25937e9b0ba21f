"""Models whose categories depend on θ (a vector of K abilities) through linear predictors.

Multidimensional compensatory models and the nominal response model share one form: every category's
log-probability is a function of linear predictors ``s_k · θ + d_k``. Four kinds (:class:`LinearKind`):

=============  =====================================================================  ============================
kind           response function (logistic metric, no 1.7, slope-intercept)           internal vector ``phi``
=============  =====================================================================  ============================
logistic       ``P(x = 1) = expit(a·θ + d)`` (M2PL)                                    ``[a_1..a_K, d]``
logistic3      ``P(x = 1) = c + (1 - c) expit(a·θ + d)`` (M3PL)                        ``[a_1..a_K, d, logit c]``
graded         ``P(x ≥ k) = expit(a·θ + d_k)``, ``d_1 > d_2 > ..`` (MGRM)              ``[a_1..a_K, d_1..d_{C-1}]``
gpcm           ``P(x = k) ∝ exp(k a·θ + d_k)``, ``d_0 = 0`` (MGPCM)                    ``[a_1..a_K, d_1..d_{C-1}]``
nominal        ``P(x = k) ∝ exp(α_k θ + c_k)``, ``α_0 = c_0 = 0`` (Bock 1972; K = 1)   ``[α_{C-1}, c_1..c_{C-1},
                                                                                          α_1..α_{C-2}]``
=============  =====================================================================  ============================

These are mirt's parameterizations (``a1..aK``, ``d``/``d1..``), except that the nominal model is estimated in
Bock's form, whose log-likelihood is concave in ``phi`` item by item; :func:`nominal_to_mirt` gives mirt's
``a1, ak0..ak{C-1}, d0..d{C-1}`` (``ak0 = 0``, ``ak{C-1} = C - 1``, ``d0 = 0``) for exchange. Items of several
kinds and category counts sit in one ``(I, p)`` array (unused entries are ignored); ``theta`` is ``(Q, K)``.

Both sides of each model live here: the θ side (:func:`log_prob`, :func:`information`, :func:`score`) used by
scoring and multidimensional CAT, and the estimation side (:func:`prob_jacobian`: probabilities and their
derivatives in ``phi``) used by calibration. Categories an item does not have carry ``LOG_ZERO``.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
from scipy.special import log_expit, logsumexp

from ._terms import LOG_ZERO

__all__ = ["LinearKind", "KIND_OF_MODEL", "n_internal", "log_prob", "prob_jacobian", "information", "score",
           "information_weight", "extra_column", "grid_of", "product_grid", "log_mvn_weights",
           "nominal_to_mirt", "nominal_from_mirt"]


class LinearKind(IntEnum):
    LOGISTIC = 0
    GRADED = 1
    GPCM = 2
    NOMINAL = 3
    LOGISTIC3 = 4


#: model names (as calibrate and banks write them) -> kind
KIND_OF_MODEL = {"2pl": LinearKind.LOGISTIC, "3pl": LinearKind.LOGISTIC3, "graded": LinearKind.GRADED,
                 "gpcm": LinearKind.GPCM, "nominal": LinearKind.NOMINAL}


def n_internal(n_dims: int, k_max: int) -> int:
    """Width of ``phi`` for items of at most ``k_max`` categories on ``n_dims`` abilities."""
    return n_dims + (k_max - 1) + max(k_max - 2, 1)


def extra_column(n_dims: int, p: int) -> int:
    """Column of α_1 (nominal items) or of ``logit c`` (M3PL items) in a ``phi`` of width
    ``p = K + (k_max - 1) + max(k_max - 2, 1)``."""
    return n_dims + (p - n_dims + 1) // 2


def _as_nodes(theta) -> np.ndarray:
    """``(1, Q, K)`` nodes shared by all items, or ``(I, Q, K)``: nodes of each item (paired evaluation)."""
    t = np.asarray(theta, dtype=float)
    t = t[:, None] if t.ndim == 1 else t
    return t[None] if t.ndim == 2 else t


def _nodes_of(theta, rows):
    return theta if theta.shape[0] == 1 else theta[rows]


def _dot(a, th):
    """``a (m, K)`` · nodes ``th (1 or m, Q, K)`` -> ``(m, Q)``."""
    return a @ th[0].T if th.shape[0] == 1 else np.einsum("ik,iqk->iq", a, th)


def _slopes_dot(s, th):
    """Category slopes ``s (m, C, K)`` · nodes -> ``(m, Q, C)``."""
    return np.einsum("ick,qk->iqc", s, th[0]) if th.shape[0] == 1 else np.einsum("ick,iqk->iqc", s, th)


def _groups(kind, n_cat):
    """Index arrays of the items of each (kind, n_cat)."""
    kind, n_cat = np.asarray(kind), np.asarray(n_cat)
    keys = kind.astype(np.int64) * 1000 + n_cat
    return [(int(k // 1000), int(k % 1000), np.flatnonzero(keys == k)) for k in np.unique(keys)]


def _softmax_slopes(kind, phi, n_dims, c):
    """Category slope vectors ``(I, C, K)`` of softmax-kind items with ``c`` categories."""
    a = phi[:, :n_dims]
    if kind == LinearKind.NOMINAL:
        s = np.zeros((phi.shape[0], c, n_dims))
        s[:, c - 1] = a
        extra = extra_column(n_dims, phi.shape[1])
        s[:, 1:c - 1, 0] = phi[:, extra:extra + c - 2]
        return s
    return np.arange(c)[None, :, None] * a[:, None, :]


def _intercepts(phi, n_dims, c):
    d = np.zeros((phi.shape[0], c))
    d[:, 1:] = phi[:, n_dims:n_dims + c - 1]
    return d


def _log_softmax(z):
    """``z - log Σ_c exp(z_c)`` over the last axis (no scipy call: this runs in every E-step and CAT step)."""
    top = z.max(axis=-1, keepdims=True)
    out = z - top
    return out - np.log(np.exp(out).sum(axis=-1, keepdims=True))


def _graded_logp(eta):
    """``log P_k`` ``(I, Q, C)`` from the cumulative predictors ``eta (I, Q, C-1)`` (decreasing in k)."""
    n_i, n_q, m = eta.shape
    up = np.concatenate([np.full((n_i, n_q, 1), np.inf), eta], axis=2)   # η_k, η_0 = +inf
    lo = np.concatenate([eta, np.full((n_i, n_q, 1), -np.inf)], axis=2)  # η_{k+1}, η_C = -inf
    with np.errstate(invalid="ignore", over="ignore"):
        gap = np.where(np.isinf(up) | np.isinf(lo), -np.inf, lo - up)
        out = log_expit(up) + log_expit(-lo) + np.log1p(-np.exp(gap))
    return np.where(np.isnan(out), -np.inf, out)


def _three_pl(ph, th, n_dims):
    """M3PL pieces: ``z``, ``σ(z)``, ``c`` and ``log P_0, log P_1`` ``(m, Q)``."""
    z = _dot(ph[:, :n_dims], th) + ph[:, None, n_dims]
    gamma = ph[:, extra_column(n_dims, ph.shape[1])][:, None]
    log_c, log_1c = log_expit(gamma), log_expit(-gamma)
    log_p1 = np.logaddexp(log_c, log_1c + log_expit(z))
    log_p0 = log_1c + log_expit(-z)
    return z, np.exp(log_expit(z)), np.exp(log_c), log_p0, log_p1


def _pad(out, logp, rows, c):
    out[rows, :, :c] = logp
    out[rows, :, c:] = LOG_ZERO


def log_prob(kind, n_cat, phi, theta) -> np.ndarray:
    """``log P_k(θ_q)`` ``(I, Q, k_max)`` for ``theta`` ``(Q, K)`` (or ``(Q,)`` when K = 1), or ``(I, Q, K)``:
    each item at its own nodes (e.g. every given item at its examinee's θ̂).

    A disordered graded item (``d_k <= d_{k+1}``) gives ``-inf`` or NaN: calibration treats that as a step
    outside the parameter space."""
    theta = _as_nodes(theta)
    phi = np.asarray(phi, dtype=float)
    n_dims = theta.shape[2]
    n_cat = np.asarray(n_cat)
    out = np.empty((phi.shape[0], theta.shape[1], int(n_cat.max())))
    for kd, c, rows in _groups(kind, n_cat):
        ph, th = phi[rows], _nodes_of(theta, rows)
        if kd == LinearKind.GRADED:
            eta = _dot(ph[:, :n_dims], th)[:, :, None] + ph[:, None, n_dims:n_dims + c - 1]
            _pad(out, _graded_logp(eta), rows, c)
        elif kd == LinearKind.LOGISTIC3:
            _, _, _, log_p0, log_p1 = _three_pl(ph, th, n_dims)
            _pad(out, np.stack([log_p0, log_p1], axis=2), rows, 2)
        else:
            z = _slopes_dot(_softmax_slopes(kd, ph, n_dims, c), th) + _intercepts(ph, n_dims, c)[:, None]
            _pad(out, _log_softmax(z), rows, c)
    return out


def prob_jacobian(kind, n_cat, phi, theta):
    """Probabilities ``P (I, Q, k_max)`` and their derivatives in ``phi``, ``dP (I, Q, k_max, p)``.

    Softmax kinds: ``∂P_k/∂φ = P_k (∂z_k/∂φ - Σ_j P_j ∂z_j/∂φ)``; graded: ``P_k = P*_k - P*_{k+1}`` with
    ``∂P*_k/∂φ = P*_k (1 - P*_k) [θ, e_k]``."""
    theta = _as_nodes(theta)
    phi = np.asarray(phi, dtype=float)
    n_dims = theta.shape[2]
    n_cat = np.asarray(n_cat)
    n_i, p = phi.shape
    k_max = int(n_cat.max())
    prob = np.zeros((n_i, theta.shape[1], k_max))
    jac = np.zeros((n_i, theta.shape[1], k_max, p))
    for kd, c, rows in _groups(kind, n_cat):
        ph, th = phi[rows], _nodes_of(theta, rows)
        m = ph.shape[0]
        if kd == LinearKind.LOGISTIC3:
            _, sig, cc, log_p0, log_p1 = _three_pl(ph, th, n_dims)
            base = (1.0 - cc) * sig * (1.0 - sig)          # ∂P_1/∂z
            d1 = np.zeros((m, th.shape[1], p))
            d1[:, :, :n_dims] = base[..., None] * th
            d1[:, :, n_dims] = base
            d1[:, :, extra_column(n_dims, p)] = cc * (1.0 - cc) * (1.0 - sig)  # ∂P_1/∂logit c
            prob[rows, :, 0], prob[rows, :, 1] = np.exp(log_p0), np.exp(log_p1)
            jac[rows, :, 1], jac[rows, :, 0] = d1, -d1
            continue
        if kd == LinearKind.GRADED:
            eta = _dot(ph[:, :n_dims], th)[:, :, None] + ph[:, None, n_dims:n_dims + c - 1]
            ps = np.exp(log_expit(eta))                    # P*_1..P*_{C-1}
            w = ps * (1.0 - ps)                            # (m, Q, C-1)
            dps = np.zeros((m, th.shape[1], c + 1, p))  # ∂P*_k, k = 0..C (zero at both ends)
            dps[:, :, 1:c, :n_dims] = w[..., None] * th[:, :, None, :]
            idx = np.arange(1, c)
            dps[:, :, idx, n_dims + idx - 1] = w
            prob[rows, :, :c] = np.exp(_graded_logp(eta))
            jac[rows, :, :c] = dps[:, :, :c] - dps[:, :, 1:c + 1]
        else:
            z = _slopes_dot(_softmax_slopes(kd, ph, n_dims, c), th) + _intercepts(ph, n_dims, c)[:,
                                                                                                                 None]
            pk = np.exp(_log_softmax(z))  # (m, Q, c)
            dz = np.zeros((m, th.shape[1], c, p))
            if kd == LinearKind.NOMINAL:
                dz[:, :, c - 1, :n_dims] = th
                extra = extra_column(n_dims, p)
                for k in range(1, c - 1):
                    dz[:, :, k, extra + k - 1] = th[:, :, 0]
            else:
                dz[:, :, :, :n_dims] = np.arange(c)[None, None, :, None] * th[:, :, None, :]
            for k in range(1, c):
                dz[:, :, k, n_dims + k - 1] = 1.0
            mean_dz = np.einsum("iqc,iqcp->iqp", pk, dz)
            prob[rows, :, :c] = pk
            jac[rows, :, :c] = pk[..., None] * (dz - mean_dz[:, :, None, :])
    return prob, jac


def _category_scores(kind, n_cat, phi, theta):
    """For the θ side: ``P (I, Q, k_max)`` and ``∂log P_k/∂θ`` ``(I, Q, k_max, K)``."""
    theta = _as_nodes(theta)
    phi = np.asarray(phi, dtype=float)
    n_dims = theta.shape[2]
    n_cat = np.asarray(n_cat)
    n_i = phi.shape[0]
    k_max = int(n_cat.max())
    prob = np.zeros((n_i, theta.shape[1], k_max))
    dlog = np.zeros((n_i, theta.shape[1], k_max, n_dims))
    for kd, c, rows in _groups(kind, n_cat):
        ph, th = phi[rows], _nodes_of(theta, rows)
        a = ph[:, :n_dims]
        if kd == LinearKind.LOGISTIC3:
            _, sig, cc, log_p0, log_p1 = _three_pl(ph, th, n_dims)
            p1 = np.exp(log_p1)
            prob[rows, :, 0], prob[rows, :, 1] = np.exp(log_p0), p1
            dlog[rows, :, 0] = -sig[..., None] * a[:, None, :]                                   # ∂log P_0
            dlog[rows, :, 1] = ((1.0 - cc) * sig * (1.0 - sig) / p1)[..., None] * a[:, None, :]  # ∂log P_1
            continue
        if kd == LinearKind.GRADED:
            eta = _dot(a, th)[:, :, None] + ph[:, None, n_dims:n_dims + c - 1]
            ps = np.exp(log_expit(eta))
            m, n_q = eta.shape[:2]
            pad = np.zeros((m, n_q, 1))
            # ∂log P_k/∂(a·θ) = 1 - P*_k - P*_{k+1}  (P*_0 = 1, P*_C = 0)
            lin = 1.0 - np.concatenate([np.ones((m, n_q, 1)), ps], axis=2) - np.concatenate([ps, pad], axis=2)
            prob[rows, :, :c] = np.exp(_graded_logp(eta))
            dlog[rows, :, :c] = lin[..., None] * a[:, None, None, :]
        else:
            s = _softmax_slopes(kd, ph, n_dims, c)  # (m, c, K)
            z = _slopes_dot(s, th) + _intercepts(ph, n_dims, c)[:, None]
            pk = np.exp(_log_softmax(z))
            mean_s = np.einsum("iqc,ick->iqk", pk, s)
            prob[rows, :, :c] = pk
            dlog[rows, :, :c] = s[:, None, :, :] - mean_s[:, :, None, :]
    return prob, dlog


def information(kind, n_cat, phi, theta) -> np.ndarray:
    """Fisher information matrices ``(I, Q, K, K)``: ``Σ_k P_k ∇log P_k ∇log P_kᵀ``."""
    if not np.any(np.asarray(kind) == LinearKind.NOMINAL):
        n_dims = _as_nodes(theta).shape[2]
        a = np.asarray(phi, dtype=float)[:, :n_dims]
        w = information_weight(kind, n_cat, phi, theta)
        return w[:, :, None, None] * (a[:, :, None] * a[:, None, :])[:, None]
    prob, dlog = _category_scores(kind, n_cat, phi, theta)
    return np.einsum("iqc,iqck,iqcl->iqkl", prob, dlog, dlog)


def information_weight(kind, n_cat, phi, theta) -> np.ndarray:
    """``w (I, Q)`` with ``I_j(θ) = w_j(θ) a_j a_jᵀ``: every kind but the nominal depends on θ through ``a·θ`` only,
    so its information matrix has rank one -- ``P(1 - P)`` (logistic), ``Σ_k (P*_k Q*_k - P*_{k+1} Q*_{k+1})² / P_k``
    (graded), the variance of the category under ``P`` (GPCM), ``((1 - c) σ (1 - σ))² / (P_0 P_1)`` (M3PL)."""
    theta = _as_nodes(theta)
    phi = np.asarray(phi, dtype=float)
    n_dims = theta.shape[2]
    n_cat = np.asarray(n_cat)
    out = np.zeros((phi.shape[0], theta.shape[1]))
    for kd, c, rows in _groups(kind, n_cat):
        ph, th = phi[rows], _nodes_of(theta, rows)
        if kd == LinearKind.NOMINAL:
            raise ValueError("nominal items have no rank-one information: use information()")
        lin = _dot(ph[:, :n_dims], th)
        if kd == LinearKind.LOGISTIC3:
            _, sig, cc, log_p0, log_p1 = _three_pl(ph, th, n_dims)
            out[rows] = ((1.0 - cc) * sig * (1.0 - sig)) ** 2 / np.exp(log_p0 + log_p1)
        elif kd == LinearKind.LOGISTIC:
            p = np.exp(log_expit(lin + ph[:, None, n_dims]))
            out[rows] = p * (1.0 - p)
        elif kd == LinearKind.GRADED:
            eta = lin[:, :, None] + ph[:, None, n_dims:n_dims + c - 1]
            ps = np.exp(log_expit(eta))
            w = np.concatenate([np.zeros(eta.shape[:2] + (1,)), ps * (1 - ps), np.zeros(eta.shape[:2] + (1,))], axis=2)
            prob = np.exp(_graded_logp(eta))
            with np.errstate(divide="ignore", invalid="ignore"):
                out[rows] = np.where(prob > 0, (w[:, :, :-1] - w[:, :, 1:]) ** 2 / prob, 0.0).sum(axis=2)
        else:
            k = np.arange(c)
            pk = np.exp(_log_softmax(k[None, None, :] * lin[:, :, None] + _intercepts(ph, n_dims, c)[:, None]))
            mean = pk @ k
            out[rows] = pk @ (k * k) - mean * mean
    return out


def category_scores(kind, n_cat, phi, theta) -> np.ndarray:
    """``∂ log P_k(θ_q) / ∂θ`` ``(I, Q, k_max, K)`` for every category."""
    return _category_scores(kind, n_cat, phi, theta)[1]


def score(kind, n_cat, phi, theta, category) -> np.ndarray:
    """``∂ log P_x(θ_q) / ∂θ`` ``(I, Q, K)`` for each item's category ``x`` (``category``: ``(I,)`` ints, or
    ``(I, Q)`` -- one category per item and node, e.g. per person)."""
    _, dlog = _category_scores(kind, n_cat, phi, theta)
    idx = np.asarray(category, dtype=np.intp)
    idx = np.broadcast_to(idx[:, None] if idx.ndim == 1 else idx, dlog.shape[:2])
    return np.take_along_axis(dlog, idx[:, :, None, None], axis=2)[:, :, 0, :]


def grid_of(axis, n_dims: int) -> np.ndarray:
    """``(len(axis)**n_dims, n_dims)``: the product of ``axis`` with itself (last dimension fastest)."""
    mesh = np.meshgrid(*([np.asarray(axis, dtype=float)] * n_dims), indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)


def product_grid(n_dims: int, points: int, bounds=(-6.0, 6.0)) -> np.ndarray:
    """``(points**n_dims, n_dims)`` nodes of the rectangular product grid on ``bounds`` (last dimension fastest)."""
    return grid_of(np.linspace(float(bounds[0]), float(bounds[1]), int(points)), n_dims)


def log_mvn_weights(nodes: np.ndarray, cov: np.ndarray, mean=None) -> np.ndarray:
    """Log of the N(mean, cov) density at ``nodes`` normalized to sum 1 over them ``(Q,)``."""
    centred = nodes if mean is None else nodes - np.asarray(mean)[None, :]
    chol = np.linalg.cholesky(cov)
    z = np.linalg.solve(chol, centred.T)
    lw = -0.5 * np.einsum("kq,kq->q", z, z)
    return lw - logsumexp(lw)


def nominal_to_mirt(phi, n_cat):
    """mirt's nominal ``(a1, ak (I, C), d (I, C))`` from the internal Bock form (1 dimension)."""
    phi = np.asarray(phi, dtype=float)
    c = int(np.max(n_cat))
    alpha = _softmax_slopes(LinearKind.NOMINAL, phi, 1, c)[:, :, 0]
    a1 = alpha[:, c - 1] / (c - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ak = alpha / a1[:, None]
    return a1, ak, _intercepts(phi, 1, c)


def nominal_from_mirt(a1, ak, d) -> np.ndarray:
    """The internal Bock-form ``phi (I, p)`` from mirt's ``a1, ak (I, C), d (I, C)`` (``ak0 = d0 = 0``)."""
    a1, ak, d = (np.asarray(v, dtype=float) for v in (a1, ak, d))
    c = ak.shape[1]
    alpha = a1[:, None] * ak
    phi = np.zeros((a1.size, n_internal(1, c)))
    phi[:, 0] = alpha[:, c - 1]
    phi[:, 1:c] = d[:, 1:] - d[:, :1]
    phi[:, c:c + c - 2] = alpha[:, 1:c - 1] - alpha[:, :1]
    phi[:, 0] -= alpha[:, 0]
    return phi
