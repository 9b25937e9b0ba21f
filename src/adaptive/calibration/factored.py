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
        for dims in dict.fromkeys(keys):
            rows = np.flatnonzero([k == dims for k in keys])
            sub = np.stack(np.meshgrid(*([self.axis] * len(dims)), indexing="ij"), axis=-1).reshape(-1, len(dims))
            nodes = np.zeros((sub.shape[0], self.n_dims))
            nodes[:, list(dims)] = sub
            layout = IndicatorLayout(values[:, rows], n_cat[rows], zeros, 1, nodes.shape[0], dtype)
            self.groups.append((dims, rows, layout, nodes))

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
        grid's log prior weights ``(Q^K,)``: ``(loglik, [counts per group], mass (Q^K,))``."""
        n = self.groups[0][2].n_persons
        full = np.broadcast_to(log_w.reshape([1] + [self.points] * self.n_dims),
                               (n,) + (self.points,) * self.n_dims).copy()
        for (dims, _rows, layout, _nodes), logp in zip(self.groups, logps, strict=True):
            table = layout.loglik_table(logp, np.zeros((1, logp.shape[1])))
            table = table if layout.sparse else table.T
            full += table.reshape([n] + self._shape(dims))
        flat = full.reshape(n, -1)
        top = flat.max(axis=1)
        flat -= top[:, None]
        post = np.empty(flat.shape, dtype=count_dtype)
        np.exp(flat, out=post, casting="same_kind")
        norm = post.sum(axis=1, dtype=np.float64)
        post /= norm.astype(post.dtype)[:, None]
        loglik = math.fsum(top) + float(np.log(norm).sum())
        grid = post.reshape([n] + [self.points] * self.n_dims)
        counts = []
        for dims, _rows, layout, _nodes in self.groups:
            other = tuple(1 + d for d in range(self.n_dims) if d not in dims)
            marginal = grid.sum(axis=other, dtype=np.float64) if other else grid
            r, _ = layout.counts(marginal.reshape(n, -1).astype(count_dtype, copy=False), count_dtype)
            counts.append(r)
        mass = post.sum(axis=0, dtype=np.float64)
        return loglik, counts, mass
