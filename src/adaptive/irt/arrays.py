"""Struct-of-arrays items and grid tables: what the numerics work on (DESIGN.md, conventions 1 and 2).

:class:`ItemArrays` holds a bank's items as arrays (family, slopes, thresholds, asymptotes,
categories, domains, status, exposure, enemies); :class:`GridTables` holds every item's
log-probabilities, their θ-derivatives and its information on a θ grid, computed once per
bank and grid. A bank compiles to :class:`ItemArrays` with :meth:`adaptive.bank.ItemBank.compile`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..exceptions import ScoringError
from . import mixed
from ._terms import LogProbTerms
from .registry import Family

__all__ = ["ItemArrays", "GridTables", "theta_grid", "cell_edges", "DEFAULT_GRID", "GRID_POINTS_MAX"]

#: the default θ grid (lo, hi, n) of calibration, EAP and the engine
DEFAULT_GRID = (-6.0, 6.0, 61)
#: the most points a θ grid may have: tables are (items x points x categories); 2,001 points are far more
#: than any estimate needs (61 match R's mirt to 1e-3), while 10**8 would exhaust the memory
GRID_POINTS_MAX = 2001


def cell_edges(grid: np.ndarray) -> np.ndarray:
    """Edges of the cells around grid points (midpoints between neighbours; end cells as wide as their
    neighbour), ``(Q + 1,)``: each point's mass spreads uniformly over its cell."""
    grid = np.asarray(grid, dtype=float)
    return np.concatenate([[grid[0] - (grid[1] - grid[0]) / 2], (grid[1:] + grid[:-1]) / 2,
                           [grid[-1] + (grid[-1] - grid[-2]) / 2]])


def theta_grid(grid=None) -> np.ndarray:
    """A quadrature grid from ``(lo, hi, n)``, an array of points, or ``None`` (61 points on [-6, 6])."""
    if grid is None:
        grid = DEFAULT_GRID
    if isinstance(grid, tuple) and len(grid) == 3:
        lo, hi, n = grid
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi and 2 <= int(n) <= GRID_POINTS_MAX):
            raise ScoringError(f"grid (lo, hi, n) needs lo < hi finite and 2 <= n <= {GRID_POINTS_MAX}, got {grid}")
        return np.linspace(float(lo), float(hi), int(n))
    pts = np.asarray(grid, dtype=float)
    if pts.ndim != 1 or pts.size < 2 or not np.all(np.isfinite(pts)) or np.any(np.diff(pts) <= 0):
        raise ScoringError("grid points must be a finite, strictly increasing 1-D array of at least 2 points")
    if pts.size > GRID_POINTS_MAX:
        raise ScoringError(f"a grid of {pts.size} points is more than {GRID_POINTS_MAX}; use fewer points")
    return pts


@dataclass(frozen=True)
class GridTables:
    """Model quantities of every item on a θ grid, computed once per bank and grid.

    Attributes
    ----------
    theta : ndarray, shape ``(Q,)``
    log_prob : ndarray, shape ``(I, Q, K)``
        :math:`\\log P_{ik}(\\theta_q)`; ``LOG_ZERO`` for categories an item lacks.
    dlog_prob, d2log_prob : ndarray, shape ``(I, Q, K)``
        θ-derivatives of ``log_prob``.
    information : ndarray, shape ``(I, Q)``
    """

    theta: np.ndarray
    log_prob: np.ndarray
    dlog_prob: np.ndarray
    d2log_prob: np.ndarray
    information: np.ndarray

    @property
    def n_points(self) -> int:
        return self.theta.size


@dataclass(frozen=True, eq=False)
class ItemArrays:
    """Struct-of-arrays form of a bank (see DESIGN.md, convention 1).

    Attributes
    ----------
    ids : tuple of str, length ``I``
    family : ndarray of int8, ``(I,)`` -- :class:`~adaptive.irt.registry.Family` codes
    a : ndarray, ``(I,)`` -- slopes *including* the bank's scaling D
    thresholds : ndarray, ``(I, K-1)`` -- ``b`` in column 0 for dichotomous items; NaN padding
    c, d : ndarray, ``(I,)``
    n_cat : ndarray of int, ``(I,)``
    domain : ndarray of int, ``(I,)`` -- index into ``domains`` (-1 when untagged)
    domains : tuple of str
    status : ndarray of int8, ``(I,)`` -- index into :data:`adaptive.bank.STATUSES`
    exposure : ndarray, ``(I,)`` -- Sympson-Hetter parameter, 1.0 when none is set
    exposure_conditional : ndarray, ``(I, S)`` -- conditional Sympson-Hetter parameters per θ̂ stratum
        (``S`` = 0 when no item has them; an item without them repeats its ``exposure``)
    enemy_pairs : ndarray of int, ``(E, 2)`` -- item index pairs that must not meet
    scaling : float
    """

    ids: tuple[str, ...]
    family: np.ndarray
    a: np.ndarray
    thresholds: np.ndarray
    c: np.ndarray
    d: np.ndarray
    n_cat: np.ndarray
    domain: np.ndarray = field(repr=False)
    domains: tuple[str, ...] = ()
    status: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8), repr=False)
    exposure: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    exposure_conditional: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)
    enemy_pairs: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), int), repr=False)
    scaling: float = 1.0

    def __repr__(self) -> str:
        codes, counts = np.unique(self.family, return_counts=True)
        fams = ", ".join(f"{Family(int(f)).label}: {int(n)}" for f, n in zip(codes, counts))
        return f"ItemArrays({self.n_items} items; {fams}; max {self.max_categories} categories; scaling {self.scaling})"

    @property
    def n_items(self) -> int:
        return len(self.ids)

    @property
    def max_categories(self) -> int:
        return int(self.n_cat.max())

    @property
    def max_score(self) -> int:
        """Highest possible raw score on all items."""
        return int((self.n_cat - 1).sum())

    def _params(self):
        return self.family, self.a, self.thresholds, self.c, self.d, self.n_cat

    def terms(self, theta) -> LogProbTerms:
        """Log-probabilities and θ-derivatives of every item, shape ``theta.shape + (I, K)``."""
        return mixed.terms(theta, *self._params())

    def terms_at(self, theta, items) -> LogProbTerms:
        """Terms of item ``items[r]`` at ability ``theta[r]``, shape ``(R, K)`` -- one row per answer, no
        persons × items array. Every model depends on θ through ``a(θ - b_k)``, so item ``i`` at θ is the item
        with thresholds ``b_k - θ`` at θ = 0."""
        items = np.asarray(items, dtype=np.int64)
        t = np.asarray(theta, dtype=float)
        return mixed.terms(0.0, self.family[items], self.a[items], self.thresholds[items] - t[:, None],
                           self.c[items], self.d[items], self.n_cat[items])

    def prob(self, theta) -> np.ndarray:
        """Category probabilities, shape ``theta.shape + (I, K)``."""
        return self.terms(theta).prob

    def information(self, theta) -> np.ndarray:
        """Item information, shape ``theta.shape + (I,)``."""
        return self.terms(theta).information

    def test_information(self, theta) -> np.ndarray:
        """Test information (sum over items), shape ``theta.shape``."""
        return self.information(theta).sum(axis=-1)

    def expected_score(self, theta) -> np.ndarray:
        """Expected item scores, shape ``theta.shape + (I,)``."""
        return self.terms(theta).expected_score

    def subset(self, index) -> ItemArrays:
        """The arrays of the items at ``index`` (positions), in that order."""
        idx = np.asarray(index, dtype=int)
        remap = np.full(self.n_items, -1)
        remap[idx] = np.arange(idx.size)
        pairs = remap[self.enemy_pairs] if self.enemy_pairs.size else self.enemy_pairs
        pairs = pairs[(pairs >= 0).all(axis=1)] if pairs.size else pairs
        k_max = int(self.n_cat[idx].max())
        return ItemArrays(
            ids=tuple(self.ids[i] for i in idx),
            family=self.family[idx],
            a=self.a[idx],
            thresholds=self.thresholds[idx, : max(k_max - 1, 1)],
            c=self.c[idx],
            d=self.d[idx],
            n_cat=self.n_cat[idx],
            domain=self.domain[idx],
            domains=self.domains,
            status=self.status[idx],
            exposure=self.exposure[idx],
            exposure_conditional=self.exposure_conditional[idx],
            enemy_pairs=pairs,
            scaling=self.scaling,
        )

    def tables(self, grid=None) -> GridTables:
        """Grid tables for ``grid`` (``(lo, hi, n)``, points, or ``None`` = 61 points on [-6, 6]).

        Tables are cached per grid on this object, so repeated scoring calls
        on the same bank and grid reuse them.
        """
        pts = theta_grid(grid)
        key = (pts.size, float(pts[0]), float(pts[-1]), hash(pts.tobytes()))
        cache = self.__dict__.setdefault("_table_cache", {})
        if key not in cache:
            tm = self.terms(pts)  # (Q, I, K)
            cache[key] = GridTables(
                theta=pts,
                log_prob=np.ascontiguousarray(tm.log_prob.transpose(1, 0, 2)),
                dlog_prob=np.ascontiguousarray(tm.dlog_prob.transpose(1, 0, 2)),
                d2log_prob=np.ascontiguousarray(tm.d2log_prob.transpose(1, 0, 2)),
                information=np.ascontiguousarray(tm.information.T),
            )
        return cache[key]
