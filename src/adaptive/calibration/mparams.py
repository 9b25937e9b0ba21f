"""The free-parameter vector of a multidimensional calibration: item parameters, then each group's latent N(μ, Σ).

Layout: the free entries of ``phi`` (row-major); then, group by group, the free entries of Σ_g (upper
triangle: correlations, and variances where the diagonal is marked free); then, group by group, the free means.
One group (the usual case) has Σ free in its correlations only and means 0; fixed items free the means and
variances of the factors they load on; in a multiple-group calibration the other groups' means, variances and
correlations are all free.
"""

from __future__ import annotations

import numpy as np

__all__ = ["_Params"]


class _Params:
    """See the module docstring. ``sigma0`` ``(K, K)`` or ``(G, K, K)``; ``corr_free`` likewise (upper triangle,
    diagonal = variance free); ``mean_free`` ``(K,)`` or ``(G, K)``."""

    def __init__(self, phi0, free, sigma0, corr_free, n_dims, mean0=None, mean_free=None, n_groups=1):
        g, k = int(n_groups), int(n_dims)
        self.n_groups = g
        self.phi0 = np.array(phi0, dtype=float)
        self.free = np.asarray(free, dtype=bool)
        self.latents0 = np.broadcast_to(np.array(sigma0, dtype=float), (g, k, k)).copy()
        self.means0 = np.zeros((g, k)) if mean0 is None else np.broadcast_to(np.array(mean0, float), (g, k)).copy()
        mf = np.zeros((g, k), dtype=bool) if mean_free is None else np.asarray(mean_free, dtype=bool)
        self.means_free = np.broadcast_to(mf, (g, k)).copy()
        cf = np.broadcast_to(np.asarray(corr_free, dtype=bool), (g, k, k))
        iu = np.triu_indices(k, 0)
        self.group_pairs = [(iu[0][cf[q][iu]], iu[1][cf[q][iu]]) for q in range(g)]
        self.free_idx = np.flatnonzero(self.free.ravel())
        self.n_item_free = int(self.free_idx.size)
        self.n_cov_free = sum(int(p[0].size) for p in self.group_pairs)
        self.n_free = self.n_item_free + self.n_cov_free + int(self.means_free.sum())
        cols = np.broadcast_to(np.arange(self.phi0.shape[1]), self.phi0.shape).ravel()[self.free_idx]
        self.slope_dims = k
        self.slope_entries = np.flatnonzero(cols < k)
        self.intercept_entries = np.flatnonzero(cols >= k)

    # the first (reference) group, as one-group code reads it
    @property
    def corr_pairs(self):
        return self.group_pairs[0]

    @property
    def latent0(self) -> np.ndarray:
        return self.latents0[0]

    @property
    def mean_free(self) -> np.ndarray:
        return self.means_free[0]

    def group_moments_free(self, q: int) -> bool:
        """Whether group ``q``'s means or variances are estimated."""
        pairs = self.group_pairs[q]
        return bool(self.means_free[q].any() or np.any(pairs[0] == pairs[1]))

    @property
    def latent_moments_free(self) -> bool:
        return any(self.group_moments_free(q) for q in range(self.n_groups))

    def pack(self, phi, sigma, mean=None) -> np.ndarray:
        """``sigma`` ``(K, K)`` (one group) or ``(G, K, K)``; ``mean`` likewise (default: the start values)."""
        g, k = self.n_groups, self.slope_dims
        sig = np.broadcast_to(np.asarray(sigma, dtype=float), (g, k, k))
        mu = self.means0 if mean is None else np.broadcast_to(np.asarray(mean, dtype=float), (g, k))
        parts = [phi.ravel()[self.free_idx]]
        parts += [sig[q][self.group_pairs[q]] for q in range(g)]
        parts += [mu[q][self.means_free[q]] for q in range(g)]
        return np.concatenate(parts)

    def latents(self, x) -> tuple[np.ndarray, np.ndarray]:
        """Every group's ``(Σ (G, K, K), μ (G, K))``."""
        sig, mu = self.latents0.copy(), self.means0.copy()
        at = self.n_item_free
        for q, pairs in enumerate(self.group_pairs):
            v = x[at:at + pairs[0].size]
            sig[q][pairs] = v
            sig[q][pairs[::-1]] = v
            at += pairs[0].size
        for q in range(self.n_groups):
            m = int(self.means_free[q].sum())
            mu[q][self.means_free[q]] = x[at:at + m]
            at += m
        return sig, mu

    def unpack(self, x) -> tuple[np.ndarray, np.ndarray]:
        """``(phi, Σ of the first group)``."""
        phi = self.phi0.copy()
        phi.ravel()[self.free_idx] = x[:self.n_item_free]
        return phi, self.latents(x)[0][0]

    def mean_of(self, x) -> np.ndarray:
        return self.latents(x)[1][0]
