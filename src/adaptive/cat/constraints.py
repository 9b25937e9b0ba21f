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
of the solution. A solver stopped by its time limit with a test in hand gives that test
(the "incumbent"); stopped with none, the step falls back to the blueprint heuristic, and
the session's audit says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix, csr_matrix, vstack

from ..bank import Blueprint

__all__ = ["BlueprintBounds", "Feasibility", "ShadowSolution", "enemy_table", "feasible_test", "shadow_test",
           "shadow_candidates"]


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


class Feasibility(Enum):
    """What the solver showed about a test-assembly program."""

    FEASIBLE = "feasible"
    INFEASIBLE = "infeasible"
    UNKNOWN = "not proven within the time limit"


#: scipy.optimize.milp status codes (HiGHS): solved, stopped by a limit, infeasible
_OPTIMAL, _LIMIT, _INFEASIBLE = 0, 1, 2


def feasible_test(pool: np.ndarray, item_domain, lo, hi, length: int, pairs,
                  time_limit: float = 30.0) -> Feasibility:
    """Whether a test of ``length`` items from ``pool`` (bool mask) can meet the bounds and enemies.

    Returns :attr:`Feasibility.UNKNOWN` when the solver stopped at ``time_limit`` seconds
    without finding a test and without proving that none exists.
    """
    cand = np.flatnonzero(pool)
    if cand.size < length:
        return Feasibility.INFEASIBLE
    cons = _program(cand, np.asarray(item_domain), lo, hi, length, pairs)
    res = milp(np.zeros(cand.size), constraints=cons, integrality=np.ones(cand.size),
               bounds=Bounds(0, 1), options={"time_limit": float(time_limit)})
    if res.x is not None and res.status in (_OPTIMAL, _LIMIT):
        return Feasibility.FEASIBLE
    if res.status == _INFEASIBLE:
        return Feasibility.INFEASIBLE
    return Feasibility.UNKNOWN


@dataclass(frozen=True)
class ShadowSolution:
    """One shadow test: its items (None when none was found) and whether it is proven optimal.

    ``status``: ``"optimal"``; ``"incumbent"`` (the solver stopped at its time limit and this is
    the best test it had found); ``"timeout"`` (stopped with no test); ``"infeasible"``.
    """

    items: np.ndarray | None
    status: str


def shadow_test(value: np.ndarray, administered: np.ndarray, eligible: np.ndarray, item_domain,
                lo, hi, length: int, pairs, time_limit: float = 10.0) -> ShadowSolution:
    """Solve one shadow test.

    Parameters
    ----------
    value : ``(I,)`` objective weights (information at θ̂)
    administered : ``(I,)`` bool -- scored items already given (forced into the test)
    eligible : ``(I,)`` bool -- items that may still be added
    time_limit : seconds the solver may take; at the limit the best test found so far is used
    """
    fixed = np.flatnonzero(administered)
    free = np.flatnonzero(eligible & ~administered)
    cand = np.concatenate([fixed, free])
    if cand.size < length:
        return ShadowSolution(None, "infeasible")
    cons = _program(cand, np.asarray(item_domain), lo, hi, length, pairs)
    lb = np.zeros(cand.size)
    lb[: fixed.size] = 1.0
    # maximize value -> minimize -value; scale for the solver's tolerances
    v = value[cand]
    scale = max(float(np.max(np.abs(v))), 1e-12)
    res = milp(-v / scale, constraints=cons, integrality=np.ones(cand.size), bounds=Bounds(lb, 1.0),
               options={"time_limit": float(time_limit), "mip_rel_gap": 1e-9})
    if res.x is not None and res.status == _OPTIMAL:
        return ShadowSolution(cand[res.x > 0.5], "optimal")
    if res.x is not None and res.status == _LIMIT:
        return ShadowSolution(cand[res.x > 0.5], "incumbent")
    return ShadowSolution(None, "timeout" if res.status == _LIMIT else "infeasible")


def shadow_candidates(value: np.ndarray, free: np.ndarray, counts: np.ndarray, hi: np.ndarray,
                      item_domain: np.ndarray, has_enemy: np.ndarray) -> np.ndarray:
    """Free items that can be in an optimal shadow test (the program is then much smaller).

    Within domain d a test holds at most ``hi_d - counts_d`` more items. Keep the best m_d free
    items of the domain, with m_d the smallest number such that at most ``m_d - (hi_d - counts_d)``
    of them have enemies: an optimal test using an item outside the list could swap it for an
    unused enemy-free item of the list of at least its value without breaking any constraint, so
    the optimum over the kept items is the optimum over all items.
    """
    keep = np.zeros(free.size, dtype=bool)
    for k in range(hi.size):  # one pass per blueprint domain
        items = np.flatnonzero(free & (item_domain == k))
        if items.size == 0:
            continue
        items = items[np.argsort(-value[items], kind="stable")]
        room = max(int(hi[k] - counts[k]), 0)
        enemy_count = np.cumsum(has_enemy[items])  # enemy-bearing items among the best m
        m = np.arange(1, items.size + 1)
        ok = m - room >= enemy_count
        m_k = int(m[np.argmax(ok)]) if ok.any() else items.size
        keep[items[:m_k]] = True
    return keep
