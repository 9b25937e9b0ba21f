"""Content constraints: blueprint bounds, enemies, the domain heuristic and the shadow test.

Blueprint domains carry a target ``proportion`` and/or count bounds
``min_items``/``max_items``. For a test of ``L`` scored items a domain must
hold between ``lo(L) = max(min_items, floor(p L))`` and
``hi(L) = min(max_items, ceil(p L))`` items, so a finished test meets the
blueprint exactly, not on average.

The shadow test (van der Linden & Reese 1998; van der Linden 2005, ch. 9)
solves, at every step, the 0-1 program

.. math::

    \\max_x \\sum_i I_i(\\hat\\theta) x_i \\quad\\text{s.t.}\\quad
    \\sum_i x_i = L,\\; lo_d \\le \\sum_{i \\in d} x_i \\le hi_d,\\;
    x_i + x_j \\le 1 \\text{ (enemies)},\\; x_i = 1 \\text{ (administered)}

with :func:`scipy.optimize.milp` (HiGHS) and gives the best unadministered item
of the solution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix, csr_matrix, vstack

from ..bank import Blueprint

__all__ = ["BlueprintBounds", "enemy_table", "feasible_test", "shadow_test"]


@dataclass(frozen=True)
class BlueprintBounds:
    """A blueprint compiled against a bank.

    Attributes
    ----------
    names : tuple of str -- domains in blueprint order
    item_domain : ndarray ``(I,)`` -- blueprint domain index of each item, -1 if none
    proportion : ndarray ``(D,)`` -- target proportions (NaN where only counts are given)
    min_items, max_items : ndarray ``(D,)`` -- explicit count bounds (0 / a large number when absent)
    """

    names: tuple[str, ...]
    item_domain: np.ndarray
    proportion: np.ndarray
    min_items: np.ndarray
    max_items: np.ndarray

    @classmethod
    def build(cls, blueprint: Blueprint, item_domain_names) -> BlueprintBounds:
        names = blueprint.names
        index = {n: k for k, n in enumerate(names)}
        item_domain = np.array([index.get(d, -1) if d is not None else -1 for d in item_domain_names])
        prop = np.array([np.nan if d.proportion is None else d.proportion for d in blueprint.domains])
        lo = np.array([d.min_items or 0 for d in blueprint.domains])
        hi = np.array([10**9 if d.max_items is None else d.max_items for d in blueprint.domains])
        return cls(names, item_domain, prop, lo, hi)

    @property
    def n_domains(self) -> int:
        return len(self.names)

    def bounds(self, length) -> tuple[np.ndarray, np.ndarray]:
        """Count bounds ``lo, hi`` for tests of ``length`` scored items, each ``length.shape + (D,)``."""
        n = np.asarray(length, dtype=float)[..., None]
        has_p = ~np.isnan(self.proportion)
        p = np.where(has_p, self.proportion, 0.0)
        # tolerance: 0.3 * 10 is 3.0000000000000004 in floating point
        lo_p = np.where(has_p, np.floor(p * n + 1e-9), 0)
        hi_p = np.where(has_p, np.ceil(p * n - 1e-9), n)
        lo = np.maximum(self.min_items, lo_p).astype(int)
        hi = np.minimum(self.max_items, hi_p).astype(int)
        return lo, hi

    def targets(self, max_length: int) -> np.ndarray:
        """Target proportions that steer the heuristic: the given ones, else the middle of the count bounds."""
        lo, hi = self.bounds(max_length)
        mid = (lo + np.minimum(hi, max_length)) / 2.0
        p = np.where(np.isnan(self.proportion), mid / max(mid.sum(), 1e-12), self.proportion)
        return p / p.sum() if p.sum() > 0 else np.full(p.shape, 1.0 / p.size)

    def domain_preference(self, counts: np.ndarray, n_scored: np.ndarray, max_length: int) -> np.ndarray:
        """Domains in order of preference for each session's next item, ``(N, D)``; -1 marks a closed domain.

        A domain is closed when it holds ``hi(max_length)`` items already, or when the
        remaining slots are all needed by domains still below ``lo(max_length)``.
        Open domains are ordered by their shortfall ``p_d (n + 1) - count_d``
        (the domain furthest below its target first; ties in blueprint order).
        """
        lo, hi = self.bounds(max_length)
        need = np.maximum(lo[None, :] - counts, 0)
        slots = max_length - n_scored
        tight = slots <= need.sum(axis=1)
        open_ = (counts < hi[None, :]) & (~tight[:, None] | (need > 0))
        deficit = self.targets(max_length)[None, :] * (n_scored[:, None] + 1) - counts
        deficit = np.where(open_, deficit, -np.inf)
        order = np.argsort(-deficit, axis=1, kind="stable")
        closed = np.take_along_axis(~open_, order, axis=1)
        return np.where(closed, -1, order)

    def may_stop(self, counts: np.ndarray, n_scored: np.ndarray) -> np.ndarray:
        """Whether a test of the current length meets the blueprint, ``(N,)``."""
        lo, hi = self.bounds(n_scored)
        return np.all((counts >= lo) & (counts <= hi), axis=1)


def enemy_table(n_items: int, pairs: np.ndarray) -> np.ndarray:
    """Padded adjacency ``(I, max_degree)`` of the enemy graph (-1 padding)."""
    pairs = np.asarray(pairs, dtype=int).reshape(-1, 2)
    if pairs.size == 0:
        return np.full((n_items, 0), -1, dtype=np.int64)
    both = np.vstack([pairs, pairs[:, ::-1]])
    both = both[np.lexsort((both[:, 1], both[:, 0]))]
    deg = np.bincount(both[:, 0], minlength=n_items)
    table = np.full((n_items, int(deg.max())), -1, dtype=np.int64)
    start = np.concatenate([[0], np.cumsum(deg)[:-1]])
    col = np.arange(both.shape[0]) - start[both[:, 0]]
    table[both[:, 0], col] = both[:, 1]
    return table


def _program(candidates, item_domain, lo, hi, length, pairs):
    """Constraint matrices of the test-assembly program over ``candidates`` (item indices)."""
    n = candidates.size
    rows = [csr_matrix(np.ones((1, n)))]
    lower, upper = [length], [length]
    dom = item_domain[candidates]
    if lo is not None:
        for d in range(lo.size):
            rows.append(csr_matrix((dom == d).astype(float)[None, :]))
            lower.append(lo[d])
            upper.append(hi[d])
    if pairs is not None and pairs.size:
        pos = np.full(int(max(candidates.max(), pairs.max())) + 1, -1)
        pos[candidates] = np.arange(n)
        local = pos[pairs]
        local = local[(local >= 0).all(axis=1)]
        if local.size:
            m = local.shape[0]
            r = np.repeat(np.arange(m), 2)
            rows.append(coo_matrix((np.ones(2 * m), (r, local.ravel())), shape=(m, n)).tocsr())
            lower += [0] * m
            upper += [1] * m
    return LinearConstraint(vstack(rows).tocsr(), np.array(lower, float), np.array(upper, float))


def feasible_test(pool: np.ndarray, item_domain, lo, hi, length: int, pairs) -> bool:
    """Whether a test of ``length`` items from ``pool`` (bool mask) can meet the bounds and enemies."""
    cand = np.flatnonzero(pool)
    if cand.size < length:
        return False
    cons = _program(cand, np.asarray(item_domain), lo, hi, length, pairs)
    res = milp(np.zeros(cand.size), constraints=cons, integrality=np.ones(cand.size),
               bounds=Bounds(0, 1), options={"time_limit": 30.0})
    return res.status == 0


def shadow_test(value: np.ndarray, administered: np.ndarray, eligible: np.ndarray, item_domain,
                lo, hi, length: int, pairs) -> np.ndarray | None:
    """Solve one shadow test; returns the items of the test (indices), or None when infeasible.

    Parameters
    ----------
    value : ``(I,)`` objective weights (information at θ̂)
    administered : ``(I,)`` bool -- scored items already given (forced into the test)
    eligible : ``(I,)`` bool -- items that may still be added
    """
    fixed = np.flatnonzero(administered)
    free = np.flatnonzero(eligible & ~administered)
    cand = np.concatenate([fixed, free])
    if cand.size < length:
        return None
    cons = _program(cand, np.asarray(item_domain), lo, hi, length, pairs)
    lb = np.zeros(cand.size)
    lb[: fixed.size] = 1.0
    # maximize value -> minimize -value; scale for the solver's tolerances
    v = value[cand]
    scale = max(float(np.max(np.abs(v))), 1e-12)
    res = milp(-v / scale, constraints=cons, integrality=np.ones(cand.size), bounds=Bounds(lb, 1.0),
               options={"time_limit": 10.0, "mip_rel_gap": 1e-9})
    if res.status != 0 or res.x is None:
        return None
    return cand[res.x > 0.5]
