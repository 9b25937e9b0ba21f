"""M-step kernels: every item's expected complete-data log-likelihood, its gradient and curvature, all items at once.

Pure functions of the internal parameters ``phi (I, p)``, the expected counts ``r (I, Q, K)`` and the nodes
``theta (Q,)``; priors are added by the caller (:class:`adaptive.calibration.em.Problem`). Three kernels:

* ``plain_*`` -- 2PL items (slope and intercept, no asymptotes) on ``(I, Q)`` arrays: the objective is
  :math:`\\sum_q r_{1q} z_q + n_q \\log(1 - P_q)` with :math:`z = a\\theta + \\delta`, and Fisher scoring is
  Newton's method for this weighted logistic regression;
* ``asymptote_*`` -- 3PL/4PL items on ``(I, Q)`` arrays, with the exact negative Hessian;
* ``general_*`` -- any family (graded, GPCM, common-slope items) through the ``(I, Q, K, p)`` derivatives of
  :func:`adaptive.irt.mixed.internal_log_prob_and_grad`.

Each ``*_objective`` returns ``(I,)``; each ``*_grad_curv`` returns the gradient ``(I, p)`` and the curvature:
the Fisher information ``(I, p, p)``, or with ``exact`` the pair (Fisher information, negative Hessian).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from ..irt.dichotomous import internal_parts, internal_weighted_hessian, internal_z
from ..irt.mixed import internal_log_prob, internal_log_prob_and_grad
from ..irt.registry import Family

__all__ = ["plain_objective", "plain_grad_curv", "asymptote_objective", "asymptote_grad_curv",
           "general_objective", "general_grad_curv", "solve_pair"]


def plain_objective(phi: np.ndarray, r: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """2PL rows: :math:`\\sum_q r_{1q} z_q + n_q \\log(1 - P_q)`."""
    z = internal_z(phi, theta)  # |z| <= Z_CLIP, where log(expit(-z)) is accurate to ~1e-16 (see internal_parts)
    r1 = r[:, :, 1]
    return np.einsum("iq,iq->i", r1, z) + np.einsum("iq,iq->i", r1 + r[:, :, 0], np.log(expit(-z)))


def plain_grad_curv(phi: np.ndarray, r: np.ndarray, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2PL rows: gradient :math:`\\sum_q (r_1 - nP)[\\theta, 1]`,
    Fisher :math:`\\sum_q nP(1-P)[\\theta, 1][\\theta, 1]^T`."""
    z = internal_z(phi, theta)
    prob = expit(z)
    r1 = r[:, :, 1]
    n = r1 + r[:, :, 0]
    resid = r1 - n * prob
    w = n * prob * (1.0 - prob)
    grad = np.zeros(phi.shape)
    grad[:, 0], grad[:, 1] = resid @ theta, resid.sum(axis=1)
    fisher = np.zeros(phi.shape + (phi.shape[1],))
    fisher[:, 0, 0] = w @ (theta * theta)
    fisher[:, 0, 1] = fisher[:, 1, 0] = w @ theta
    fisher[:, 1, 1] = w.sum(axis=1)
    return grad, fisher


def asymptote_objective(phi: np.ndarray, r: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """3PL/4PL rows: :math:`\\sum_q r_{1q} \\log P_q + r_{0q} \\log(1 - P_q)`."""
    *_, lp1, lp0 = internal_parts(phi, theta)
    with np.errstate(invalid="ignore"):
        return np.einsum("iq,iq->i", r[:, :, 1], lp1) + np.einsum("iq,iq->i", r[:, :, 0], lp0)


def asymptote_grad_curv(phi: np.ndarray, r: np.ndarray, theta: np.ndarray
                        ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Gradient, Fisher information and negative Hessian of 3PL/4PL rows, ``phi = [a, delta, gamma, omega]``.

    With ``P = c + (u - c) s``: ``dP/dz = (u - c) s (1 - s)``, ``dP/dgamma = c (1 - c)(1 - s)``,
    ``dP/domega = u (1 - u) s``; the gradient is ``sum_q e dP`` with ``e = r1 / P - r0 / (1 - P)``, the
    Fisher information ``sum_q n dP dP^T / (P (1 - P))`` and the negative Hessian
    ``sum_q (r1 / P^2 + r0 / (1 - P)^2) dP dP^T - e d2P``.
    """
    parts = internal_parts(phi, theta)
    _, s, sc, c, u, lp1, lp0 = parts
    p1, p0 = np.exp(lp1), np.exp(lp0)
    r1, r0 = r[:, :, 1], r[:, :, 0]
    pz = (u - c) * s * sc
    deriv = np.stack([pz * theta, pz, c * (1 - c) * sc, u * (1 - u) * s], axis=2)  # (I, Q, 4) dP/dphi
    e = r1 / p1 - r0 / p0
    grad = np.einsum("iq,iqr->ir", e, deriv)
    wf = np.sqrt((r1 + r0) / (p1 * p0))[:, :, None] * deriv
    fisher = wf.transpose(0, 2, 1) @ wf
    wo = np.sqrt(r1 / p1 ** 2 + r0 / p0 ** 2)[:, :, None] * deriv
    neg_h = wo.transpose(0, 2, 1) @ wo - internal_weighted_hessian(parts, theta, e)
    return grad, (fisher, neg_h)


def general_objective(phi: np.ndarray, r: np.ndarray, theta: np.ndarray, family: np.ndarray, n_cat: np.ndarray
                      ) -> np.ndarray:
    """Any family: :math:`\\sum_{q,k} r_{qk} \\log P_k(\\theta_q)`."""
    with np.errstate(invalid="ignore"):
        logp = internal_log_prob(family, n_cat, phi, theta)
    return np.einsum("iqk,iqk->i", r[:, :, :logp.shape[2]], logp)


def general_grad_curv(phi: np.ndarray, r: np.ndarray, theta: np.ndarray, family: np.ndarray, n_cat: np.ndarray,
                      exact: bool = False):
    """Gradient ``(I, p)`` and curvature of any family's rows.

    The curvature is the Fisher information; with ``exact`` the negative Hessian replaces it for
    dichotomous items (Newton's method: quadratic convergence for 3PL/4PL, where Fisher scoring
    crawls along the flat direction of ``c``), returned as the pair (Fisher, negative Hessian).
    GPCM's Fisher information is its exact Hessian.
    """
    logp, g = internal_log_prob_and_grad(family, n_cat, phi, theta)
    n_i, n_q, k, p = g.shape
    r = r[:, :, :k]  # the rows' own widest item (r is as wide as the bank's; its extra categories count nothing)
    g2 = g.reshape(n_i, n_q * k, p)
    grad = (r.reshape(n_i, 1, n_q * k) @ g2)[:, 0, :]
    prob = np.exp(logp) * (logp > -999.0)
    w = np.sqrt(r.sum(axis=2)[:, :, None] * prob).reshape(n_i, n_q * k, 1)  # Fisher weights n_q P_k
    wg = w * g2
    fisher = wg.transpose(0, 2, 1) @ wg
    if not exact:
        return grad, fisher
    dich = np.flatnonzero(family == Family.DICHOTOMOUS)
    neg_h = fisher.copy()
    if dich.size:
        rg = np.sqrt(r[dich]).reshape(dich.size, n_q * k, 1) * g2[dich]
        outer = rg.transpose(0, 2, 1) @ rg  # sum_qk R_k G_k G_k^T
        coef = r[dich, :, 1] / prob[dich, :, 1] - r[dich, :, 0] / prob[dich, :, 0]
        second = internal_weighted_hessian(internal_parts(phi[dich], theta), theta, coef)
        neg_h[dich, :4, :4] = outer[:, :4, :4] - second
    return grad, (fisher, neg_h)


def solve_pair(mat: np.ndarray, grad: np.ndarray, cols: np.ndarray, fr: np.ndarray) -> np.ndarray | None:
    """``mat^-1 grad`` for rows whose free parameters are the two columns ``cols`` (the rest of ``mat`` is the
    identity and of ``grad`` zero), by Cramer's rule; None when a row's determinant is not positive or some row
    has other parameters held this iteration (the caller then takes the general solve)."""
    i, j = cols
    if not (fr[:, i].all() and fr[:, j].all() and fr.sum(axis=1).max() == 2):
        return None
    a, b, c, d = mat[:, i, i], mat[:, i, j], mat[:, j, i], mat[:, j, j]
    det = a * d - b * c
    if not np.all(det > 0.0) or not np.all(np.isfinite(det)):
        return None
    step = np.zeros_like(grad)
    step[:, i] = (d * grad[:, i] - b * grad[:, j]) / det
    step[:, j] = (a * grad[:, j] - c * grad[:, i]) / det
    return step
