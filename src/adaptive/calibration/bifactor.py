"""Bifactor models by EM with Gibbons & Hedeker's (1992) dimension reduction.

Every item loads on the general factor G and on at most one specific factor; all factors are independent N(0, 1).
Given G, the specific factors are independent, so a person's likelihood is

``L = Σ_g w_g · L_0(g) · Π_s Σ_q w_q · L_s(g, q)``

with ``L_0`` the items that load on G only and ``L_s`` the items of specific factor s, each on a two-dimensional
grid (g, q) of ``points²`` nodes. The cost grows with the number of specific factors S (S two-dimensional
integrals), not exponentially with 1 + S dimensions. Each ``L_s`` is one E-step product of the indicator layout
(:class:`~adaptive.calibration.layout.IndicatorLayout`) of that factor's items; the posterior of the items of
factor s over (g, q) is ``w_g L_0 Π_{s'≠s} L_{s'} · w_q L_s / L``, and the items' M-step is the two-dimensional one
of :mod:`.multidim` (slopes on G and on the item's specific factor, the intercepts).
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from ..irt.linear import log_prob
from .em import EStep
from .layout import IndicatorLayout
from .multidim import ItemMStep, ObservedInformation, _Params, product_grid

__all__ = ["BifactorProblem"]


def _array(counts) -> np.ndarray:
    assert isinstance(counts, np.ndarray)  # this E-step's counts are one array (a factored E-step's are a list)
    return counts


class BifactorProblem(ObservedInformation):
    """One bifactor calibration.

    Parameters
    ----------
    values : (N, I); kind, n_cat : (I,); phi0, free : (I, p) in the 2-dimensional layout ``[a_G, a_s, d...]``;
    specific : (I,) int, the item's specific factor 0..S-1 or -1 (general factor only); points : per dimension
    """

    def __init__(self, values, kind, n_cat, phi0, free, specific, n_specific, points, bounds=(-6.0, 6.0),
                 c_prior=None):
        self.kind, self.n_cat = np.asarray(kind), np.asarray(n_cat)
        self.specific = np.asarray(specific)
        self.n_specific = int(n_specific)
        self.axis = np.linspace(float(bounds[0]), float(bounds[1]), int(points))
        lw = -0.5 * self.axis ** 2
        self.log_w = lw - logsumexp(lw)
        self.nodes2 = product_grid(2, points, bounds)              # (g slow, q fast)
        self.nodes0 = np.column_stack([self.axis, np.zeros_like(self.axis)])
        self.params = _Params(phi0, free, np.eye(2), np.zeros((2, 2), dtype=bool), 2)
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
            step = ItemMStep(self.kind[rows], self.n_cat[rows], self.params.free[rows], nodes, c_prior)
            self.blocks.append((s, rows, layout, nodes, step))
        self.priors: dict = {}
        self.expanded = False

    def _table(self, layout, logp):
        """Per-person log-likelihood of the block's items at its nodes ``(N, Q)``."""
        table = layout.loglik_table(logp, np.zeros((1, logp.shape[1])))
        return table if layout.sparse else table.T

    def estep(self, x, count_dtype=np.float64) -> EStep | None:
        phi, _ = self.params.unpack(x)
        pts = self.axis.size
        n = self.values.shape[0]
        total = np.broadcast_to(self.log_w, (n, pts)).copy()   # log w_g + log L_0(g) + Σ_s log L_s(g)
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
            ll = ll.reshape(n, pts, pts)
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
        r = np.zeros((self.n_items, pts * pts, int(self.n_cat.max())))
        mass = np.zeros((1, pts * pts))
        for (_s, rows, layout, _nodes, _step), part in zip(self.blocks, parts, strict=True):
            if part is None:
                counts, _ = layout.counts(joint, count_dtype)
                r[rows, :pts, :counts.shape[2]] = counts
                continue
            e, mass_s = part
            e *= (joint / mass_s).astype(e.dtype)[:, :, None]      # posterior of (g, q) for factor s
            counts, g_mass = layout.counts(e.reshape(n, pts * pts), count_dtype)
            r[rows, :, :counts.shape[2]] = counts
            mass = g_mass
        ll_total = float(log_l.sum())
        return EStep(ll_total, ll_total, r, mass)

    def em_map(self, x, stats: EStep):
        phi, sigma = self.params.unpack(x)
        phi = phi.copy()
        pts = self.axis.size
        for s, rows, _layout, _nodes, step in self.blocks:
            r = _array(stats.counts)[rows, :pts] if s < 0 else _array(stats.counts)[rows]
            phi[rows] = step.run(phi[rows], r[:, :, :int(self.n_cat[rows].max())])
        return self.params.pack(phi, sigma)

    def score(self, x) -> np.ndarray:
        stats = self.estep(x, np.float64)
        if stats is None:
            raise FloatingPointError("non-finite likelihood")
        phi, _ = self.params.unpack(x)
        grad = np.zeros_like(phi)
        pts = self.axis.size
        for s, rows, _layout, _nodes, step in self.blocks:
            r = _array(stats.counts)[rows, :pts] if s < 0 else _array(stats.counts)[rows]
            grad[rows] = step.gradient(phi[rows], r[:, :, :int(self.n_cat[rows].max())])
        return grad.ravel()[self.params.free_idx]

    def full_phi(self, phi2, fill=0.0) -> np.ndarray:
        """``(I, p)`` parameters on all 1 + S factors from the 2-dimensional layout ``[a_G, a_s, d...]``: the
        specific slope goes to the item's own factor's column, ``fill`` to the others."""
        phi2 = np.asarray(phi2, dtype=float)
        k = 1 + self.n_specific
        out = np.full((phi2.shape[0], k + phi2.shape[1] - 2), fill)
        out[:, 0] = phi2[:, 0]
        has = self.specific >= 0
        out[np.flatnonzero(has), 1 + self.specific[has]] = phi2[has, 1]
        out[:, k:] = phi2[:, 2:]
        return out
