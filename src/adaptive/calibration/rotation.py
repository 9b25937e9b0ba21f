"""Factor rotations by gradient projection (Jennrich 2001, 2002; Bernaards & Jennrich 2005).

``rotate_loadings(L, method)`` turns an ``(I, K)`` loading matrix into a simpler one: ``varimax`` (orthogonal),
``oblimin`` (oblique, quartimin: γ = 0) and ``geomin`` (oblique, ε = 0.01 as GPArotation's default). An orthogonal
rotation is ``L T``; an oblique one is ``L (T')⁻¹`` with factor correlations ``Φ = T'T``. The criteria are
those of the GPArotation package's documentation (the functions ``vgQ.varimax``, ``vgQ.oblimin``,
``vgQ.geomin``); the algorithm is the gradient projection algorithm with step halving from several starts
(the identity and random orthogonal matrices drawn from a fixed seed), keeping the lowest criterion, since
geomin in particular has local minima.

Signs and order are then made canonical: each factor's loadings sum to a positive number, and factors are
ordered by their sum of squared loadings, largest first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..exceptions import CalibrationError

__all__ = ["Rotation", "rotate_loadings", "ROTATIONS", "tucker_congruence"]

ORTHOGONAL = ("varimax",)
OBLIQUE = ("oblimin", "geomin")
ROTATIONS = ORTHOGONAL + OBLIQUE


@dataclass(frozen=True)
class Rotation:
    """A rotated solution: ``loadings (I, K)``, ``factor_correlations (K, K)`` (identity when orthogonal), the
    rotation matrix ``T``, the criterion value and the method."""

    method: str
    loadings: np.ndarray
    factor_correlations: np.ndarray
    rotation_matrix: np.ndarray
    criterion: float
    converged: bool


def _criterion(method, lam):
    lam2 = lam * lam
    if method == "varimax":
        ql = lam2 - lam2.mean(axis=0, keepdims=True)
        return -np.sum(ql * ql) / 4.0, -lam * ql
    if method == "oblimin":  # quartimin
        off = lam2 @ (np.ones((lam.shape[1],) * 2) - np.eye(lam.shape[1]))
        return np.sum(lam2 * off) / 4.0, lam * off
    eps = 0.01
    k = lam.shape[1]
    l2 = lam2 + eps
    pro = np.exp(np.log(l2).sum(axis=1) / k)
    return float(pro.sum()), (2.0 / k) * lam / l2 * pro[:, None]


def _gpa(a, t, method, oblique, tol=1e-7, max_iter=2000):
    def evaluate(tm):
        lam = a @ np.linalg.inv(tm).T if oblique else a @ tm
        f, gq = _criterion(method, lam)
        g = -(lam.T @ gq @ np.linalg.inv(tm)).T if oblique else a.T @ gq
        return lam, f, g

    lam, f, g = evaluate(t)
    alpha = 1.0
    for _ in range(max_iter):
        if oblique:
            gp = g - t * np.sum(t * g, axis=0, keepdims=True)
        else:
            m = t.T @ g
            gp = g - t @ ((m + m.T) / 2)
        s = float(np.sqrt(np.sum(gp * gp)))
        if s < tol:
            return t, lam, f, True
        alpha *= 2
        for _half in range(20):
            x = t - alpha * gp
            if oblique:
                tt = x / np.sqrt(np.sum(x * x, axis=0, keepdims=True))
            else:
                u, _, vt = np.linalg.svd(x)
                tt = u @ vt
            lam_t, f_t, g_t = evaluate(tt)
            if f_t < f - 0.5 * s * s * alpha:
                break
            alpha /= 2
        t, lam, f, g = tt, lam_t, f_t, g_t
    return t, lam, f, False


def rotate_loadings(loadings, method="oblimin", n_starts=10, seed=0) -> Rotation:
    """Rotate ``loadings (I, K)`` by ``method`` (see the module docstring)."""
    a = np.asarray(loadings, dtype=float)
    if method not in ROTATIONS:
        raise CalibrationError(f"rotation {method!r} is not available; use one of {', '.join(ROTATIONS)}")
    k = a.shape[1]
    if k < 2:
        return Rotation(method, a.copy(), np.eye(k), np.eye(k), 0.0, True)
    oblique = method in OBLIQUE
    rng = np.random.default_rng(seed)
    best = None
    for start in range(n_starts):
        t0 = np.eye(k) if start == 0 else np.linalg.qr(rng.standard_normal((k, k)))[0]
        t, lam, f, ok = _gpa(a, t0, method, oblique)
        if best is None or f < best[2] - 1e-10:
            best = (t, lam, f, ok)
    assert best is not None
    t, lam, f, ok = best
    phi = t.T @ t if oblique else np.eye(k)
    # canonical signs and order
    sign = np.where(lam.sum(axis=0) < 0, -1.0, 1.0)
    order = np.argsort(-(lam * lam).sum(axis=0), kind="stable")
    lam = (lam * sign)[:, order]
    phi = (phi * np.outer(sign, sign))[np.ix_(order, order)]
    t = (t * sign)[:, order]
    return Rotation(method, lam, phi, t, float(f), ok)


def tucker_congruence(x, y) -> np.ndarray:
    """Tucker's congruence coefficient of matching columns of ``x`` and ``y`` ``(I, K)``."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return np.sum(x * y, axis=0) / np.sqrt(np.sum(x * x, axis=0) * np.sum(y * y, axis=0))
