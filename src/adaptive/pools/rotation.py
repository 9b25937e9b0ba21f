"""Pool rotation: split a master pool into k parallel pools by mixed-integer programming.

Each operational item goes to exactly one of ``k`` pools (``x_ip`` binary), so that

* every pool has ``⌊I/k⌋`` or ``⌈I/k⌉`` items, and of each content domain ``⌊n_d/k⌋`` or ``⌈n_d/k⌉`` (the
  master pool's blueprint proportions, pool by pool);
* enemies are kept apart: an enemy pair never shares a pool (``x_ip + x_jp <= 1``), so no pool has to steer
  around them;
* the pools' test information functions match: at each of the ``points`` (default the cut and ±1 logit),
  every pool's information lies within ``tolerance`` (default 1%) of ``1/k`` of the master pool's.

HiGHS (:func:`scipy.optimize.milp`) finds such a split within ``time_limit`` seconds (a feasibility problem:
proving the smallest possible deviation would take far longer and change nothing a candidate notices); the
deviation reached is reported. Pretest and retired items go into every pool bank.

Examples
--------
>>> from adaptive.synthetic import synthetic_bank
>>> res = split_pool(synthetic_bank(120, model="2pl", rng=1), 3, theta_cut=0.0)
>>> [len(b) for b in res.banks], res.status
([40, 40, 40], 'within tolerance')
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

from ..bank import ItemBank
from ..exceptions import DesignError

__all__ = ["PoolSplit", "split_pool"]


@dataclass(frozen=True)
class PoolSplit:
    """The k pools: ``banks``, the pool of each item (``assignment``, -1 for items left in every pool: pretest
    and retired), the information of each pool at ``points`` (``information (k, P)``) and the largest relative
    deviation from the target (``deviation``)."""

    banks: tuple[ItemBank, ...]
    assignment: np.ndarray
    points: np.ndarray
    information: np.ndarray
    target: np.ndarray
    deviation: float
    status: str

    def summary(self) -> str:
        lines = [f"{len(self.banks)} pools ({self.status}); information within {self.deviation:.1%} of the target "
                 f"at θ = {', '.join(f'{p:+.2f}' for p in self.points)}"]
        for k, b in enumerate(self.banks):
            lines.append(f"  pool {k + 1}: {sum(it.status == 'operational' for it in b.items)} operational items; "
                         "information " + ", ".join(f"{v:.2f}" for v in self.information[k]))
        return "\n".join(lines)


def split_pool(bank: ItemBank, k: int, *, theta_cut: float, points=None, tolerance: float = 0.01,
               time_limit: float = 60.0) -> PoolSplit:
    """Split ``bank``'s operational items into ``k`` parallel pools; see the module docstring."""
    if not isinstance(k, (int, np.integer)) or k < 2:
        raise DesignError(f"k={k!r}: split into 2 or more pools")
    arrays = bank.compile()
    op = np.flatnonzero(arrays.status == 0)
    n = op.size
    if n < 2 * k:
        raise DesignError(f"{n} operational items cannot make {k} pools")
    pts = np.asarray([theta_cut - 1.0, theta_cut, theta_cut + 1.0] if points is None else points, dtype=float)
    info = arrays.subset(op).information(pts)  # (P, n)
    target = info.sum(axis=1) / k
    n_var = n * k + 1  # x[i, p] at column i * k + p, then δ
    rows, cols, vals, lo, hi = [], [], [], [], []
    r = 0

    def block(row_of, col_of, val, lb, ub):
        """Rows ``r + row_of`` (one entry per (row, col, val)); ``lb``/``ub`` per new row."""
        nonlocal r
        rows.append(r + np.asarray(row_of))
        cols.append(np.asarray(col_of))
        vals.append(np.asarray(val, dtype=float))
        lo.append(np.asarray(lb, dtype=float))
        hi.append(np.asarray(ub, dtype=float))
        r += len(lb)

    items, pools = np.meshgrid(np.arange(n), np.arange(k), indexing="ij")  # (n, k)
    var = (items * k + pools).ravel()
    block(items.ravel(), var, np.ones(n * k), np.ones(n), np.ones(n))  # each item in exactly one pool
    block(pools.ravel(), var, np.ones(n * k), np.full(k, n // k), np.full(k, -(-n // k)))  # pool sizes
    dom = arrays.domain[op]
    for d in np.unique(dom):  # per domain: a few rows each
        m = np.flatnonzero(dom == d)
        mi, mp = np.meshgrid(m, np.arange(k), indexing="ij")
        block(mp.ravel(), (mi * k + mp).ravel(), np.ones(mi.size), np.full(k, m.size // k),
              np.full(k, -(-m.size // k)))
    for q in range(pts.size):
        # |Σ info x - T| <= δ T  <=>  Σ info x - T δ <= T  and  Σ info x + T δ >= T, per pool
        w = np.repeat(info[q], k)
        for sign, lb, ub in ((-1.0, -np.inf, target[q]), (1.0, target[q], np.inf)):
            block(np.concatenate([pools.ravel(), np.arange(k)]), np.concatenate([var, np.full(k, n * k)]),
                  np.concatenate([w, np.full(k, sign * target[q])]), np.full(k, lb), np.full(k, ub))
    pos = np.full(arrays.n_items, -1)
    pos[op] = np.arange(n)
    pairs = np.array([(pos[a], pos[b]) for a, b in arrays.enemy_pairs if pos[a] >= 0 and pos[b] >= 0],
                     dtype=np.int64).reshape(-1, 2)
    if pairs.size:  # enemies apart: x_ap + x_bp <= 1 for every pool
        e = np.arange(pairs.shape[0] * k)
        pa = np.repeat(pairs, k, axis=0)
        pp = np.tile(np.arange(k), pairs.shape[0])
        block(np.concatenate([e, e]), np.concatenate([pa[:, 0] * k + pp, pa[:, 1] * k + pp]), np.ones(2 * e.size),
              np.full(e.size, -np.inf), np.ones(e.size))
    rows_a, cols_a, vals_a = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    lo_a, hi_a = np.concatenate(lo), np.concatenate(hi)
    matrix = coo_matrix((vals_a, (rows_a, cols_a)), shape=(r, n_var)).tocsr()
    cost = np.zeros(n_var)  # a feasibility problem: any split within the tolerance will do
    integrality = np.ones(n_var)
    integrality[-1] = 0
    upper = np.ones(n_var)
    upper[-1] = tolerance
    res = milp(cost, constraints=LinearConstraint(matrix, lo_a, hi_a), integrality=integrality,
               bounds=Bounds(np.zeros(n_var), upper), options={"time_limit": float(time_limit)})
    if res.x is None:
        why = ("infeasible: the domains, pool sizes, enemies and information tolerance cannot all be met"
               if res.status == 2 else f"no split found within {time_limit:g} s")
        raise DesignError(f"splitting {n} items into {k} pools: {why}; try fewer pools, a larger tolerance (now "
                          f"{tolerance:g}) or a longer time limit")
    x = np.round(res.x[:-1]).reshape(n, k)
    pool_of = x.argmax(axis=1)
    assignment = np.full(arrays.n_items, -1)
    assignment[op] = pool_of
    banks, information = [], np.zeros((k, pts.size))
    for p in range(k):
        keep = [it for it, a in zip(bank.items, assignment, strict=True) if a in (p, -1)]
        ids = {it.id for it in keep}
        kept = [it.model_copy(update={"enemies": [e for e in it.enemies if e in ids]}) for it in keep]
        banks.append(ItemBank(name=f"{bank.name}-pool{p + 1}", version=bank.version, scaling=bank.scaling,
                              blueprint=bank.blueprint, items=kept))
        information[p] = info[:, pool_of == p].sum(axis=1)
    deviation = float(np.max(np.abs(information - target) / target))
    return PoolSplit(banks=tuple(banks), assignment=assignment, points=pts, information=information, target=target,
                     deviation=deviation, status="within tolerance")
