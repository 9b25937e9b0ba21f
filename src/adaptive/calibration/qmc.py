"""Quasi-Monte Carlo EM for models with more factors than a product grid can hold.

The latent integral is taken over ``Q`` scrambled Sobol points mapped to N(0, Σ): ``θ_q = L z_q`` with
``z_q = Φ⁻¹(u_q)`` and ``Σ = L Lᵀ``, each point weighing ``1/Q`` (Jank 2005 on QMC in EM; mirt's ``QMCEM``).
The points follow the current Σ, so each E-step's posterior weights sit on the nodes that the M-step then uses:
the items' M-step is the product-grid one on those nodes, and the latent correlations maximize
``Σ_q mass_q log φ(θ_q; R)`` over the correlation matrices R (unit diagonal) with the nodes held fixed (the
Monte Carlo EM update; Wei & Tanner 1990). The log-likelihood is the QMC estimate ``Σ_n log (1/Q) Σ_q L_n(θ_q)``.
The same ``z`` is used in every cycle (a fixed seed), so the EM map is deterministic and SQUAREM applies. With
fixed items the points are ``θ_q = μ + L z_q`` and the means and variances of the anchored factors are estimated too
(the same Monte Carlo EM update, in μ and Σ).

Standard errors: the QMC log-likelihood is a smooth function of the parameters (the points are fixed), so its
observed information is taken as for a product grid, by forward differences of the marginal score. The items'
score is Fisher's identity at the E-step's counts; a correlation's score moves the points: with ``Σ = L Lᵀ``,
``∂ℓ/∂ρ = Σ_q g_qᵀ (∂L/∂ρ) z_q``, ``g_q = Σ_j Σ_k r_jqk ∂log P_jk(θ_q)/∂θ`` the posterior-weighted θ-score at
point q, and ``∂L/∂ρ = L Φ(L⁻¹ (∂Σ/∂ρ) L⁻ᵀ)`` (Φ: the lower triangle, diagonal halved; the derivative of the
Cholesky factor).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm, qmc

from ..irt.linear import category_scores, log_prob
from .em import EStep
from .latent import newton_correlations, newton_latent
from .multidim import ItemMStep, LinearProblem

__all__ = ["QMCProblem", "sobol_normal"]


def sobol_normal(n_points: int, n_dims: int, seed: int = 1) -> np.ndarray:
    """``(2^m, n_dims)`` standard normal scores of a scrambled Sobol sequence, ``2^m`` the smallest power of two
    at least ``n_points`` (the sequence's balance needs a power of two)."""
    m = max(int(np.ceil(np.log2(max(n_points, 2)))), 1)
    u = qmc.Sobol(d=n_dims, scramble=True, seed=seed).random_base2(m)
    return norm.ppf(np.clip(u, 1e-12, 1 - 1e-12))


class QMCProblem(LinearProblem):
    """A :class:`~adaptive.calibration.multidim.LinearProblem` integrated by quasi-Monte Carlo (see the module
    docstring); ``nodes`` are the standard normal scores ``z``, mapped to N(0, Σ) at every step."""

    integration = "qmc"

    def __init__(self, values, kind, n_cat, phi0, free, n_points, n_dims, sigma0, corr_free, seed=1, priors=None,
                 mean_free=None):
        self.z = sobol_normal(n_points, n_dims, seed)
        super().__init__(values, kind, n_cat, phi0, free, self.z, sigma0, corr_free, priors=priors,
                         mean_free=mean_free)

    def nodes_for(self, sigma, mean=None) -> np.ndarray:
        out = self.z @ np.linalg.cholesky(sigma).T
        return out if mean is None else out + np.asarray(mean)[None, :]

    def estep(self, x, count_dtype=np.float64) -> EStep | None:
        phi, sigma = self.params.unpack(x)
        try:
            nodes = self.nodes_for(sigma, self.params.mean_of(x))
        except np.linalg.LinAlgError:
            return None
        with np.errstate(invalid="ignore", divide="ignore"):
            logp = log_prob(self.kind, self.n_cat, phi, nodes)
        if not np.all(np.isfinite(logp)):
            return None
        lw = np.full((1, nodes.shape[0]), -np.log(nodes.shape[0]))
        post, ll = self.layout.posterior(logp, lw, fast=count_dtype == np.float32)
        r, g_mass = self.layout.counts(post, count_dtype)
        return EStep(ll, ll + self.log_prior(phi), r, g_mass)

    def em_map(self, x, stats: EStep, mstep_tol=1e-8):
        phi, sigma = self.params.unpack(x)
        mean = self.params.mean_of(x)
        nodes = self.nodes_for(sigma, mean)
        phi = ItemMStep(self.kind, self.n_cat, self.params.free, nodes, self.priors).run(phi, stats.counts,
                                                                                          tol=mstep_tol)
        if self.expanded:
            self.nodes = nodes
            phi = self._expand_and_reduce(phi, stats.group_mass[0])
        elif self.params.latent_moments_free:
            sigma, mean = self._moments(sigma, mean, stats.group_mass[0], nodes)
        else:
            sigma = self._correlations(sigma, stats.group_mass[0], nodes)
        return self.params.pack(phi, sigma, mean)

    def _moments(self, sigma, mean, mass, nodes):
        """Fixed items: the free entries of μ and Σ maximizing ``Σ_q mass_q log φ(θ_q; μ, Σ)`` with the nodes held
        fixed -- minimize ``log|Σ| + tr(Σ⁻¹ S(μ))``, ``S(μ)`` the posterior second moments about μ."""
        pairs, mfree = self.params.corr_pairs, self.params.mean_free
        total = float(mass.sum())
        m_bar = mass @ nodes / total
        factor = np.where(pairs[0] == pairs[1], 1.0, 2.0)

        def objective(r, mu):
            try:
                chol = np.linalg.cholesky(r)
            except np.linalg.LinAlgError:
                return None
            c = nodes - mu
            s_mat = (mass[:, None] * c).T @ c / total
            inv = np.linalg.inv(r)
            f = 2.0 * np.log(np.diag(chol)).sum() + np.trace(inv @ s_mat)
            g_cov = (inv - inv @ s_mat @ inv)[pairs] * factor
            g_mean = (-2.0 * inv @ (m_bar - mu))[mfree]
            return float(f), np.concatenate([g_cov, g_mean])

        return newton_latent(sigma, mean, pairs, mfree, objective)

    def _correlations(self, sigma, mass, nodes):
        """The free correlations maximizing ``Σ_q mass_q log φ(θ_q; R)``: minimize ``log|R| + tr(R⁻¹S)`` with ``S``
        the posterior second moments at the nodes, by damped Newton (differences of the analytic gradient)."""
        pairs = self.params.corr_pairs
        if pairs[0].size == 0:
            return sigma
        s_mat = (mass[:, None] * nodes).T @ nodes / float(mass.sum())

        def objective(r):
            try:
                chol = np.linalg.cholesky(r)
            except np.linalg.LinAlgError:
                return None
            inv = np.linalg.inv(r)
            f = 2.0 * np.log(np.diag(chol)).sum() + np.trace(inv @ s_mat)
            return float(f), 2.0 * (inv - inv @ s_mat @ inv)[pairs]

        return newton_correlations(sigma, pairs, objective)

    def score(self, x) -> np.ndarray:
        """The marginal score of the QMC log-likelihood (see the module docstring)."""
        stats = self.estep(x, np.float64)
        if stats is None:
            raise FloatingPointError("non-finite likelihood")
        phi, sigma = self.params.unpack(x)
        nodes = self.nodes_for(sigma, self.params.mean_of(x))
        counts = stats.counts
        assert isinstance(counts, np.ndarray)
        step = ItemMStep(self.kind, self.n_cat, self.params.free, nodes, self.priors)
        out = [step.gradient(phi, counts).ravel()[self.params.free_idx]]
        pairs = self.params.corr_pairs
        mfree = self.params.mean_free
        if pairs[0].size or mfree.any():
            dlog = category_scores(self.kind, self.n_cat, phi, nodes)           # (I, Q, C, K)
            g = np.einsum("iqc,iqck->qk", counts[:, :, :dlog.shape[2]], dlog)  # (Q, K)
            chol = np.linalg.cholesky(sigma)
            inv = np.linalg.inv(chol)
            rho = []
            for a, b in zip(*pairs, strict=True):
                d_sigma = np.zeros_like(sigma)
                d_sigma[a, b] = d_sigma[b, a] = 1.0
                inner = inv @ d_sigma @ inv.T
                d_chol = chol @ (np.tril(inner, -1) + 0.5 * np.diag(np.diag(inner)))
                rho.append(float(np.sum(g * (self.z @ d_chol.T))))
            out.append(np.array(rho))
            out.append(g.sum(axis=0)[mfree])  # a mean moves every point alike
        return np.concatenate(out)
