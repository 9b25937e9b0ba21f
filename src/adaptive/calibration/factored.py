"""The E-step of a confirmatory model whose items each load on a few factors, factored by loading pattern.

An item that loads on the factors F contributes a log-likelihood that depends on θ_F only. Items with the same
loading pattern form a group; each group's log-likelihood is one indicator-layout product on its own sub-grid
(``Q^|F|`` nodes instead of ``Q^K``), and the full grid's log-likelihood is the broadcast sum of the groups'
tables plus the log prior weights. The posterior over the full grid is normalized once, and each group's
expected counts come from its marginal posterior over its sub-grid. With simple structure (every item on one
factor) the products shrink from ``N x Q^K`` to ``K`` products of ``N x Q``; the result is the same E-step, to
rounding. A pattern that spans every factor (exploratory models) leaves nothing to factor, and the full-grid
E-step is used instead.
"""

from __future__ import annotations

import math

import numpy as np

from ..irt.linear import grid_of
from .layout import IndicatorLayout

__all__ = ["FactoredEStep"]


class FactoredEStep:
    """Groups of items by loading pattern, each with its indicator layout and its sub-grid nodes.

    Parameters
    ----------
    values : (N, I); n_cat : (I,); pattern : (I, K) bool, the factors each item loads on; axis : (Q,) points of
    each dimension (the full grid is their product, last dimension fastest)
    """

    def __init__(self, values, n_cat, pattern, axis, dtype=np.float64):
        pattern = np.asarray(pattern, dtype=bool)
        self.n_dims = pattern.shape[1]
        self.axis = np.asarray(axis, dtype=float)
        self.points = self.axis.size
        n = values.shape[0]
        zeros = np.zeros(n, dtype=np.intp)
        keys = [tuple(np.flatnonzero(row)) for row in pattern]
        self.groups = []  # (dims, rows, layout, nodes embedded in K dimensions)
        for dims in sorted(set(keys)):
            rows = np.flatnonzero([k == dims for k in keys])
            sub = grid_of(self.axis, len(dims))
            nodes = np.zeros((sub.shape[0], self.n_dims))
            nodes[:, list(dims)] = sub
            layout = IndicatorLayout(values[:, rows], n_cat[rows], zeros, 1, nodes.shape[0], dtype)
            self.groups.append((dims, rows, layout, nodes))
        #: simple structure: one group per factor, each on its own factor, in factor order
        self.simple = [g[0] for g in self.groups] == [(d,) for d in range(self.n_dims)]

    @staticmethod
    def applies(pattern) -> bool:
        """Whether factoring saves work: no item loads on every factor, and there are at least two factors."""
        pattern = np.asarray(pattern, dtype=bool)
        return pattern.shape[1] > 1 and not pattern.all(axis=1).any()

    def _shape(self, dims):
        """How a group's ``(N, Q^|F|)`` table broadcasts over the full ``(N, Q, ..., Q)`` grid."""
        return [self.points if d in dims else 1 for d in range(self.n_dims)]

    def run(self, logps, log_w, count_dtype=np.float64):
        """The E-step from each group's log-probabilities at its nodes (``logps``, in group order) and the full
        grid's log prior weights ``(Q^K,)``: ``(loglik, [counts per group], mass (Q^K,))``.

        The full grid's posterior is never formed: with each group's table shifted by its per-person maximum,
        ``exp`` of the full log-posterior is the product ``W · Π_g E_g`` of the prior weights ``W`` and the groups'
        small exponentiated tables, so the normalizers, each group's marginal posterior and the grid mass are
        tensor contractions (``einsum``; BLAS products) of those factors, with no exponential over ``N x Q^K``."""
        n = self.groups[0][2].n_persons
        letters = "abcdefghijklm"[:self.n_dims]
        top_w = float(log_w.max())
        weights = np.exp(log_w - top_w).reshape([self.points] * self.n_dims)
        factors, subs = [], []
        shift = np.full(n, top_w)
        for (dims, _rows, layout, _nodes), logp in zip(self.groups, logps, strict=True):
            table = layout.loglik_table(logp, np.zeros((1, logp.shape[1])))
            table = table if layout.sparse else table.T             # (N, Q^|F|)
            top = table.max(axis=1)
            shift += top
            factors.append(np.exp(table - top[:, None]).reshape([n] + [self.points] * len(dims)))
            subs.append("n" + "".join(letters[d] for d in dims))
        if self.simple:
            marginals, norm, mass = self._simple_contractions(weights, factors)
        else:
            w_sub = letters
            norm = np.einsum(",".join([w_sub] + subs) + "->n", weights, *factors, optimize="greedy")
            inv = 1.0 / norm
            marginals = [np.einsum(",".join([w_sub] + subs + ["n"]) + "->" + sub, weights, *factors, inv,
                                   optimize="greedy") for sub in subs]
            mass = weights * np.einsum(",".join(subs + ["n"]) + "->" + w_sub, *factors, inv, optimize="greedy")
        loglik = math.fsum(shift) + float(np.log(norm).sum())
        counts = []
        for (_dims, _rows, layout, _nodes), marginal in zip(self.groups, marginals, strict=True):
            r, _ = layout.counts(marginal.reshape(n, -1).astype(count_dtype, copy=False), count_dtype)
            counts.append(r)
        return loglik, counts, mass.ravel()

    def _simple_contractions(self, weights, factors):
        """Simple structure (one group per factor, in factor order): each marginal is the outer product of the
        other factors' ``E`` times the prior weights, one BLAS product ``(N, Q^(K-1)) @ (Q^(K-1), Q)``."""
        k = self.n_dims
        marginals, norm = [], None
        for d in range(k):
            others = [factors[o] for o in range(k) if o != d]
            outer = _outer(others)                                            # (N, Q^(K-1))
            w_d = np.moveaxis(weights, d, 0).reshape(self.points, -1)         # (Q, Q^(K-1))
            m = (outer @ w_d.T) * factors[d]                                   # (N, Q), unnormalized
            if norm is None:
                norm = m.sum(axis=1)
            marginals.append(m / norm[:, None])
        assert norm is not None
        lead = _outer(factors[:-1]) / norm[:, None]                             # (N, Q^(K-1))
        mass = weights * (lead.T @ factors[-1]).reshape([self.points] * k)
        return marginals, norm, mass


def _outer(factors) -> np.ndarray:
    """Per-person outer product of ``(N, Q)`` factors: ``(N, Q^m)`` (last factor fastest)."""
    out = factors[0]
    for f in factors[1:]:
        out = (out[:, :, None] * f[:, None, :]).reshape(out.shape[0], -1)
    return out
