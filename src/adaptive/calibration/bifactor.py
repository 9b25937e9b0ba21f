"""Bifactor and two-tier models by EM with Gibbons & Hedeker's (1992) dimension reduction (Cai 2010 for two tiers).

The first tier has G general factors (G = 1: the bifactor model), correlated N(0, Σ_G); the second tier has S
specific factors, N(0, 1), independent of each other and of the general tier. Every item loads on any of the
general factors and on at most one specific factor. Given the general factors g, the specific factors are
independent, so a person's likelihood is

``L = Σ_g w_g(Σ_G) · L_0(g) · Π_s Σ_q w_q · L_s(g, q)``

with ``L_0`` the items on general factors only and ``L_s`` the items of specific factor s, each on a grid
(g, q) of ``points^(G+1)`` nodes. The cost grows with the number of specific factors S (S integrals of G + 1
dimensions), not exponentially with G + S dimensions. Each ``L_s`` is one E-step product of the indicator layout
(:class:`~adaptive.calibration.layout.IndicatorLayout`) of that factor's items; the posterior of the items of
factor s over (g, q) is ``w_g L_0 Π_{s'≠s} L_{s'} · w_q L_s / L``, and the items' M-step is the (G + 1)-dimensional
one of :mod:`.multidim` (slopes on the general factors and on the item's specific factor, the intercepts). The
general tier's correlations take the latent M-step of :mod:`.multidim` on the general grid's posterior mass.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from ..irt.linear import grid_of, log_mvn_weights, log_prob
from .em import EStep
from .latent import latent_mstep, latent_score
from .layout import IndicatorLayout
from .mparams import _Params
from .multidim import ItemMStep, ObservedInformation

__all__ = ["BifactorProblem"]


def _array(counts) -> np.ndarray:
    assert isinstance(counts, np.ndarray)  # this E-step's counts are one array (a factored E-step's are a list)
    return counts


class BifactorProblem(ObservedInformation):
    """One bifactor or two-tier calibration.

    Parameters
    ----------
    values : (N, I); kind, n_cat : (I,); phi0, free : (I, p) in the block layout ``[a_G1..a_GG, a_s, d...]``;
    specific : (I,) int, the item's specific factor 0..S-1 or -1 (general factors only); points : per dimension;
    n_general : G; correlated : estimate the general factors' correlations (G > 1)
    """

    def __init__(self, values, kind, n_cat, phi0, free, specific, n_specific, points, bounds=(-6.0, 6.0),
                 priors=None, n_general=1, correlated=True):
        self.kind, self.n_cat = np.asarray(kind), np.asarray(n_cat)
        self.specific = np.asarray(specific)
        self.n_specific = int(n_specific)
        self.n_general = g = int(n_general)
        self.axis = np.linspace(float(bounds[0]), float(bounds[1]), int(points))
        lw = -0.5 * self.axis ** 2
        self.log_w = lw - logsumexp(lw)                           # the specific factors' weights
        self.general_nodes = grid_of(self.axis, g)                # (Qg, G)
        q_g = self.general_nodes.shape[0]
        self.nodes2 = np.column_stack([np.repeat(self.general_nodes, self.axis.size, axis=0),
                                       np.tile(self.axis, q_g)])   # (Qg * Q, G + 1): g slow, q fast
        self.nodes0 = np.column_stack([self.general_nodes, np.zeros(q_g)])
        corr_free = np.zeros((g + 1, g + 1), dtype=bool)
        corr_free[:g, :g] = np.triu(np.ones((g, g), dtype=bool), 1) & bool(correlated)
        self.params = _Params(phi0, free, np.eye(g + 1), corr_free, g + 1)
        self.values = np.asarray(values, dtype=float)
        self.n_items = self.values.shape[1]
        n = self.values.shape[0]
        zeros = np.zeros(n, dtype=np.intp)
        self.blocks = []  # (rows, layout, nodes, M-step)
        for s in range(-1, self.n_specific):
            rows = np.flatnonzero(self.specific == s)
            if rows.size == 0:
                continue
            nodes = self.nodes0 if s < 0 else self.nodes2
            layout = IndicatorLayout(self.values[:, rows], self.n_cat[rows], zeros, 1, nodes.shape[0])
            step = ItemMStep(self.kind[rows], self.n_cat[rows], self.params.free[rows], nodes, priors)
            self.blocks.append((s, rows, layout, nodes, step))
        self.priors: dict = dict(priors or {})
        self.expanded = False

    def _general_sigma(self, sigma) -> np.ndarray:
        return sigma[:self.n_general, :self.n_general]

    def _table(self, layout, logp):
        """Per-person log-likelihood of the block's items at its nodes ``(N, Q)``."""
        table = layout.loglik_table(logp, np.zeros((1, logp.shape[1])))
        return table if layout.sparse else table.T

    def estep(self, x, count_dtype=np.float64) -> EStep | None:
        phi, sigma = self.params.unpack(x)
        pts, q_g = self.axis.size, self.general_nodes.shape[0]
        n = self.values.shape[0]
        try:
            lw_g = log_mvn_weights(self.general_nodes, self._general_sigma(sigma))
        except np.linalg.LinAlgError:
            return None  # general-tier correlations that are not positive definite
        total = np.broadcast_to(lw_g, (n, q_g)).copy()         # log w_g + log L_0(g) + Σ_s log L_s(g)
        parts: list[tuple | None] = []
        for s, rows, layout, nodes, _step in self.blocks:
            with np.errstate(invalid="ignore", divide="ignore"):
                logp = log_prob(self.kind[rows], self.n_cat[rows], phi[rows], nodes)
            if not np.all(np.isfinite(logp)):
                return None
            ll = self._table(layout, logp)
            if s < 0:
                total += ll
                parts.append(None)
                continue
            ll = ll.reshape(n, q_g, pts)
            ll += self.log_w[None, None, :]
            top = ll.max(axis=2)
            ll -= top[:, :, None]
            e = np.empty(ll.shape, dtype=count_dtype)
            np.exp(ll, out=e, casting="same_kind")                 # w_q L_s(g, q) / exp(top)
            mass_s = e.sum(axis=2, dtype=np.float64)
            total += top + np.log(mass_s)                          # log L_s(g)
            parts.append((e, mass_s))
        top = total.max(axis=1)
        joint = np.exp(total - top[:, None])
        norm = joint.sum(axis=1)
        log_l = top + np.log(norm)
        joint /= norm[:, None]                                     # posterior of g
        r = np.zeros((self.n_items, q_g * pts, int(self.n_cat.max())))
        for (_s, rows, layout, _nodes, _step), part in zip(self.blocks, parts, strict=True):
            if part is None:
                counts, _ = layout.counts(joint, count_dtype)
                r[rows, :q_g, :counts.shape[2]] = counts
                continue
            e, mass_s = part
            e *= (joint / mass_s).astype(e.dtype)[:, :, None]      # posterior of (g, q) for factor s
            counts, _ = layout.counts(e.reshape(n, q_g * pts), count_dtype)
            r[rows, :, :counts.shape[2]] = counts
        ll_total = float(log_l.sum())
        # group mass: the general grid's
        return EStep(ll_total, ll_total + self.log_prior(phi), r, joint.sum(axis=0)[None, :])

    def em_map(self, x, stats: EStep, mstep_tol=1e-8):
        phi, sigma = self.params.unpack(x)
        phi = phi.copy()
        q_g = self.general_nodes.shape[0]
        for s, rows, _layout, _nodes, step in self.blocks:
            r = _array(stats.counts)[rows, :q_g] if s < 0 else _array(stats.counts)[rows]
            phi[rows] = step.run(phi[rows], r[:, :, :int(self.n_cat[rows].max())], tol=mstep_tol)
        g = self.n_general
        sigma = sigma.copy()
        sigma[:g, :g] = latent_mstep(self.general_nodes, self._general_sigma(sigma), self.params.corr_pairs,
                                     stats.group_mass[0])
        return self.params.pack(phi, sigma)

    def score(self, x) -> np.ndarray:
        stats = self.estep(x, np.float64)
        if stats is None:
            raise FloatingPointError("non-finite likelihood")
        phi, sigma = self.params.unpack(x)
        grad = np.zeros_like(phi)
        q_g = self.general_nodes.shape[0]
        for s, rows, _layout, _nodes, step in self.blocks:
            r = _array(stats.counts)[rows, :q_g] if s < 0 else _array(stats.counts)[rows]
            grad[rows] = step.gradient(phi[rows], r[:, :, :int(self.n_cat[rows].max())])
        out = [grad.ravel()[self.params.free_idx]]
        if self.params.corr_pairs[0].size:
            out.append(latent_score(self.general_nodes, self._general_sigma(sigma), self.params.corr_pairs,
                                    stats.group_mass[0]))
        return np.concatenate(out)

    def full_phi(self, phi2, fill=0.0) -> np.ndarray:
        """``(I, p)`` parameters on all G + S factors from the block layout ``[a_G1..a_GG, a_s, d...]``: the
        specific slope goes to the item's own factor's column, ``fill`` to the others."""
        phi2 = np.asarray(phi2, dtype=float)
        g = self.n_general
        k = g + self.n_specific
        out = np.full((phi2.shape[0], k + phi2.shape[1] - g - 1), fill)
        out[:, :g] = phi2[:, :g]
        has = self.specific >= 0
        out[np.flatnonzero(has), g + self.specific[has]] = phi2[has, g]
        out[:, k:] = phi2[:, g + 1:]
        return out

    def full_cov(self, x) -> np.ndarray:
        """The ``(G + S, G + S)`` latent correlation matrix: Σ_G, then the identity for the specific factors."""
        _, sigma = self.params.unpack(x)
        out = np.eye(self.n_general + self.n_specific)
        out[:self.n_general, :self.n_general] = self._general_sigma(sigma)
        return out
