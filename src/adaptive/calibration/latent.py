"""The latent N(μ, Σ) of a multidimensional calibration on a product grid: its EM step and its score.

The grid's weights are the N(μ, Σ) density at the nodes normalized to sum 1 over them, so the latent part of the
expected complete-data log-likelihood is ``Σ_q mass_q log w_q(μ, Σ)`` with ``mass_q`` the E-step's expected persons
at node q. Its gradient (the normalization included) is, with ``M = Σ_q (mass_q - N w_q)(θ_q - μ)(θ_q - μ)ᵀ``,
``∂/∂Σ_ab = (Σ⁻¹ M Σ⁻¹)_ab`` for a covariance (or, variances fixed at 1, a correlation) entered at both (a, b) and
(b, a), half that for a variance, and ``∂/∂μ = Σ⁻¹ Σ_q (mass_q - N w_q)(θ_q - μ)``. The M-step maximizes it over
the free entries by damped Newton (the Hessian by differences of the analytic gradient); at the maximum the same
gradient at the E-step's mass is the marginal score (Fisher's identity), which the Oakes SEs difference.
"""

from __future__ import annotations

import numpy as np

from ..irt.linear import log_mvn_weights

__all__ = ["latent_mstep", "latent_score", "newton_correlations", "newton_latent", "newton_minimize"]


def _gradient_terms(nodes, sigma, mean, mass):
    """``(log w (Q,), Σ⁻¹ M Σ⁻¹ (K, K), Σ⁻¹ Σ_q (mass_q - N w_q)(θ_q - μ) (K,))``, un-normalized by N."""
    lw = log_mvn_weights(nodes, sigma, mean)
    centred = nodes - mean[None, :]
    excess = mass - mass.sum() * np.exp(lw)
    inv = np.linalg.inv(sigma)
    m = (excess[:, None] * centred).T @ centred
    return lw, inv @ m @ inv, inv @ (excess @ centred)


def _pair_factor(pairs) -> np.ndarray:
    """1 for an off-diagonal entry (it enters Σ twice), 1/2 for a variance."""
    return np.where(pairs[0] == pairs[1], 0.5, 1.0)


def latent_mstep(nodes, sigma, pairs, mass, mean=None, mean_free=None):
    """The free entries of ``sigma`` at ``pairs`` (correlations, or covariances and variances) and of ``mean`` at
    ``mean_free`` that maximize ``Σ_q mass_q log w_q(μ, Σ)`` (see the module docstring). Returns ``sigma`` alone
    when no mean is given, else ``(sigma, mean)``."""
    k = sigma.shape[0]
    mu0 = np.zeros(k) if mean is None else np.asarray(mean, dtype=float)
    mfree = np.zeros(k, dtype=bool) if mean_free is None else np.asarray(mean_free, dtype=bool)
    if pairs[0].size == 0 and not mfree.any():
        return sigma if mean is None else (sigma, mu0)
    total = float(mass.sum())
    factor = _pair_factor(pairs)

    def objective(r, mu):
        """Minus the per-person expected log weight and its gradient (None outside the PD matrices)."""
        try:
            lw, cov_part, mean_part = _gradient_terms(nodes, r, mu, mass)
        except np.linalg.LinAlgError:
            return None
        grad = np.concatenate([(cov_part[pairs] * factor), mean_part[mfree]])
        return -float(mass @ lw) / total, -grad / total

    out, mu = newton_latent(sigma, mu0, pairs, mfree, objective)
    return out if mean is None else (out, mu)


def newton_latent(sigma, mean, pairs, mean_free, objective):
    """Minimize ``objective(Σ, μ) -> (value, gradient in [Σ at pairs, μ at mean_free])`` (None where undefined)
    over those entries by :func:`newton_minimize`, variances kept positive; returns ``(Σ, μ)``."""
    n_pairs = pairs[0].size

    def build(v):
        out, mu = sigma.copy(), mean.copy()
        out[pairs] = v[:n_pairs]
        out[pairs[::-1]] = v[:n_pairs]
        mu[mean_free] = v[n_pairs:]
        return out, mu

    lower = np.concatenate([np.where(pairs[0] == pairs[1], 1e-4, -np.inf), np.full(int(mean_free.sum()), -np.inf)])
    v = newton_minimize(np.concatenate([sigma[pairs], mean[mean_free]]), lambda v: objective(*build(v)),
                        bounds=(lower, None))
    return build(v)


def latent_score(nodes, sigma, pairs, mass, mean=None, mean_free=None) -> np.ndarray:
    """The marginal score in the entries ``pairs`` of Σ and ``mean_free`` of μ (Fisher's identity, at the E-step's
    grid mass)."""
    k = sigma.shape[0]
    mu = np.zeros(k) if mean is None else np.asarray(mean, dtype=float)
    _, cov_part, mean_part = _gradient_terms(nodes, sigma, mu, mass)
    out = cov_part[pairs] * _pair_factor(pairs)
    return out if mean_free is None else np.concatenate([out, mean_part[np.asarray(mean_free, dtype=bool)]])


def newton_correlations(sigma, pairs, objective):
    """Minimize ``objective(R) -> (value, gradient in the correlations at pairs)`` (None outside the positive
    definite matrices) over the correlations ``pairs`` of ``sigma`` (see :func:`newton_minimize`)."""

    def build(rho):
        out = sigma.copy()
        out[pairs] = rho
        out[pairs[::-1]] = rho
        return out

    return build(newton_minimize(sigma[pairs].copy(), lambda rho: objective(build(rho)), clip=0.999))


def newton_minimize(v, objective, clip=None, bounds=None):
    """Minimize ``objective(v) -> (value, gradient)`` (None where undefined) by damped Newton, the Hessian by
    differences of the analytic gradient; steps of at most 0.2, halved until the objective does not rise;
    ``clip``: keep every entry in [-clip, clip] (correlations); ``bounds``: ``(lower (n,), None)`` per entry."""
    lower = None if bounds is None else np.asarray(bounds[0], dtype=float)

    def keep(x):
        if clip is not None:
            x = np.clip(x, -clip, clip)
        if lower is not None:
            x = np.maximum(x, lower)
        return x

    v = np.asarray(v, dtype=float).copy()
    cur = objective(v)
    if cur is None or v.size == 0:
        return v
    h = 1e-6
    for _ in range(50):
        f, g = cur
        hess = np.empty((v.size, v.size))
        for j in range(v.size):
            e = np.zeros(v.size)
            e[j] = h
            up, down = objective(v + e), objective(v - e)
            if up is None or down is None:
                hess = np.eye(v.size)
                break
            hess[:, j] = (up[1] - down[1]) / (2 * h)
        hess = 0.5 * (hess + hess.T)
        try:
            np.linalg.cholesky(hess)
            step = -np.linalg.solve(hess, g)
        except np.linalg.LinAlgError:
            step = -g
        step /= max(1.0, float(np.abs(step).max()) / 0.2)
        for _half in range(40):
            trial = objective(keep(v + step))
            if trial is not None and trial[0] <= f:
                break
            step = step / 2
        else:
            break
        v = keep(v + step)
        cur = trial
        if np.abs(step).max() < 1e-10:
            break
    return v
