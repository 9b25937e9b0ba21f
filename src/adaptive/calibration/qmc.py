"""Quasi-Monte Carlo EM for models with more factors than a product grid can hold.

The latent integral is taken over ``Q`` scrambled Sobol points mapped to N(0, Σ): ``θ_q = L z_q`` with
``z_q = Φ⁻¹(u_q)`` and ``Σ = L Lᵀ``, each point weighing ``1/Q`` (Jank 2005 on QMC in EM; mirt's ``QMCEM``).
The points follow the current Σ, so each E-step's posterior weights sit on the nodes that the M-step then uses:
the items' M-step is the product-grid one on those nodes, and the latent correlations maximize
``Σ_q mass_q log φ(θ_q; R)`` over the correlation matrices R (unit diagonal) with the nodes held fixed (the
Monte Carlo EM update; Wei & Tanner 1990). The log-likelihood is the QMC estimate ``Σ_n log (1/Q) Σ_q L_n(θ_q)``.
The same ``z`` is used in every cycle (a fixed seed), so the EM map is deterministic and SQUAREM applies.

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
from .latent import newton_correlations
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

    def __init__(self, values, kind, n_cat, phi0, free, n_points, n_dims, sigma0, corr_free, seed=1, priors=None):
        self.z = sobol_normal(n_points, n_dims, seed)
        super().__init__(values, kind, n_cat, phi0, free, self.z, sigma0, corr_free, priors=priors)

    def nodes_for(self, sigma) -> np.ndarray:
        return self.z @ np.linalg.cholesky(sigma).T

    def estep(self, x, count_dtype=np.float64) -> EStep | None:
        phi, sigma = self.params.unpack(x)
        try:
            nodes = self.nodes_for(sigma)
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

    def em_map(self, x, stats: EStep):
        phi, sigma = self.params.unpack(x)
        nodes = self.nodes_for(sigma)
        phi = ItemMStep(self.kind, self.n_cat, self.params.free, nodes, self.priors).run(phi, stats.counts)
        if self.expanded:
            self.nodes = nodes
            phi = self._expand_and_reduce(phi, stats.group_mass[0])
        else:
            sigma = self._correlations(sigma, stats.group_mass[0], nodes)
        return self.params.pack(phi, sigma)

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
        nodes = self.nodes_for(sigma)
        counts = stats.counts
        assert isinstance(counts, np.ndarray)
        step = ItemMStep(self.kind, self.n_cat, self.params.free, nodes, self.priors)
        out = [step.gradient(phi, counts).ravel()[self.params.free_idx]]
        pairs = self.params.corr_pairs
        if pairs[0].size:
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
        return np.concatenate(out)
