"""Item-selection criteria, vectorized over a batch of sessions.

Every rule maps the batch state to a criterion matrix ``(n, I)`` (larger is
better); the engine masks ineligible items and picks the best (ties to the
lower item index), or draws among the best ``k`` (randomesque). Rules are
registered by name so that an :class:`~adaptive.cat.design.ExamDesign` can name them.

=============  ======================================================================  ===========================
name           criterion                                                                source
=============  ======================================================================  ===========================
mfi            Fisher information at θ̂ (exact; see :class:`MFIIndex`)                  Lord (1980)
mfi_cut        Fisher information at θcut                                              Spray & Reckase (1994)
mpwi           :math:`\\sum_q \\pi(\\theta_q) I_i(\\theta_q)`                            van der Linden (1998)
kl             :math:`\\sum_{|\\theta_q - \\hat\\theta| \\le z/\\sqrt n} KL_i(\\hat\\theta \\| \\theta_q)`  Chang & Ying (1996)
klp            :math:`\\sum_q \\pi(\\theta_q) KL_i(\\hat\\theta \\| \\theta_q)`           Chang & Ying (1996)
mepv           minus the expected posterior variance after the item                    van der Linden (1998)
b_matching     :math:`-|\\bar b_i - \\hat\\theta|`                                      Urry (1970)
random         a uniform draw per session, step and item
a_stratified   b-matching within the a-stratum of the current stage, b-blocked          Chang, Qian & Ying (2001)
=============  ======================================================================  ===========================

Here :math:`\\pi` is the session's normalized posterior on the grid and
:math:`KL_i(\\theta_0 \\| \\theta) = \\sum_k P_{ik}(\\theta_0)\\log\\frac{P_{ik}(\\theta_0)}{P_{ik}(\\theta)}`;
all the grid sums are matrix products ``posterior (n, Q) @ table (Q, I)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ._streams import uniforms

__all__ = ["RULES", "register", "criterion", "MFIIndex", "info_3pl", "mean_difficulty", "a_strata"]

#: name -> criterion function ``f(engine, state, rows) -> (n, I)``
RULES: dict = {}


def register(name):
    def deco(fn):
        RULES[name] = fn
        return fn
    return deco


def criterion(engine, state, rows) -> np.ndarray:
    """The design's criterion for the sessions ``rows``, ``(n, I)``."""
    return RULES[engine.design.selection.rule](engine, state, rows)


# --------------------------------------------------------------------------- information


def info_3pl(theta, a, b, c):
    """Fisher information of 3PL items (d = 1), written stably:
    :math:`a^2 (1-c)\\,\\psi(1-\\psi)\\,\\psi/P` with :math:`\\psi = \\sigma(a(\\theta-b))`,
    :math:`P = c + (1-c)\\psi` (equal to Birnbaum's :math:`a^2\\frac{Q}{P}(\\frac{P-c}{1-c})^2`).
    ``theta`` broadcasts against the parameter arrays."""
    e = np.exp(-np.clip(a * (theta - b), -40.0, 40.0))  # e = (1 - psi) / psi
    psi = 1.0 / (1.0 + e)
    return a * a * (1.0 - c) * e * psi * psi * psi / (c + (1.0 - c) * psi)


def _posterior(engine, state, rows):
    lp = state.log_post[rows]
    post = np.exp(lp - lp.max(axis=1, keepdims=True))
    return post / post.sum(axis=1, keepdims=True)


@register("mfi")
def _mfi(engine, state, rows):
    return engine.information_at(state.theta[rows])


@register("mfi_cut")
def _mfi_cut(engine, state, rows):
    return np.broadcast_to(engine.information_at(np.array([engine.design.theta_cut]))[0],
                           (np.size(rows), engine.arrays.n_items))


@register("mpwi")
def _mpwi(engine, state, rows):
    return _posterior(engine, state, rows) @ engine.tables.information.T


def _kl_weighted(engine, state, rows, weights):
    tm = engine.arrays.terms(state.theta[rows])  # (n, I, K) at θ̂
    p0 = tm.prob
    out = np.einsum("nik,nik->ni", p0, tm.log_prob) * weights.sum(axis=1, keepdims=True)
    for k in range(engine.arrays.max_categories):
        out -= p0[:, :, k] * (weights @ engine.tables.log_prob[:, :, k].T)
    return out


@register("klp")
def _klp(engine, state, rows):
    return _kl_weighted(engine, state, rows, _posterior(engine, state, rows))


@register("kl")
def _kl(engine, state, rows):
    grid = engine.grid
    n = np.maximum(state.n_scored[rows], 1)
    delta = engine.design.selection.kl_z / np.sqrt(n)
    theta = state.theta[rows]
    w = (np.abs(grid[None, :] - theta[:, None]) <= delta[:, None]).astype(float)
    empty = w.sum(axis=1) == 0
    if empty.any():  # interval narrower than the grid spacing: use the nearest point
        w[empty, np.abs(grid[None, :] - theta[empty, None]).argmin(axis=1)] = 1.0
    return _kl_weighted(engine, state, rows, w)


@register("mepv")
def _mepv(engine, state, rows):
    post = _posterior(engine, state, rows)
    theta = state.theta[rows]
    t = engine.grid[None, :] - theta[:, None]  # centred: less cancellation
    epv = np.zeros((post.shape[0], engine.arrays.n_items))
    for k in range(engine.arrays.max_categories):
        pk = np.exp(engine.tables.log_prob[:, :, k]).T  # (Q, I)
        pred = post @ pk
        m1 = (post * t) @ pk
        m2 = (post * t * t) @ pk
        with np.errstate(divide="ignore", invalid="ignore"):
            epv += np.where(pred > 0, m2 - m1 * m1 / np.where(pred > 0, pred, 1.0), 0.0)
    return -epv


def mean_difficulty(arrays) -> np.ndarray:
    """b for dichotomous items, the mean threshold (step) for polytomous items."""
    return np.nanmean(arrays.thresholds, axis=1)


@register("b_matching")
def _b_matching(engine, state, rows):
    return -np.abs(engine.difficulty[None, :] - state.theta[rows, None])


@register("random")
def _random(engine, state, rows):
    return uniforms(state.keys[rows], state.n_given[rows], "random_rule", width=engine.arrays.n_items)


def a_strata(a: np.ndarray, b: np.ndarray, n_strata: int) -> np.ndarray:
    """Stratum of each item by a-stratification with b-blocking (Chang, Qian & Ying 2001).

    Items are sorted by b into consecutive blocks of ``n_strata`` items; within a block,
    the item with the k-th smallest a goes to stratum k. Every stratum thus spans the
    whole b range, and stratum 0 holds the least discriminating items.
    """
    order = np.argsort(b, kind="stable")
    strata = np.empty(a.size, dtype=np.int64)
    for start in range(0, a.size, n_strata):
        block = order[start : start + n_strata]
        ranks = np.argsort(np.argsort(a[block], kind="stable"), kind="stable")
        strata[block] = ranks * n_strata // max(block.size, 1) if block.size < n_strata else ranks
    return strata


@register("a_stratified")
def _a_stratified(engine, state, rows):
    s_count = engine.design.selection.strata
    stage = np.minimum(state.n_scored[rows] * s_count // engine.design.max_length, s_count - 1)
    gap = np.abs(engine.strata[None, :] - stage[:, None])
    # within the stage's stratum: b-matching; another stratum only when this one has nothing eligible
    return -np.abs(engine.difficulty[None, :] - state.theta[rows, None]) - 1.0e6 * gap


# --------------------------------------------------------------------------- exact MFI


@dataclass(frozen=True)
class MFIIndex:
    """Upper bounds of item information per θ cell, for exact maximum-information selection.

    For 3PL items (d = 1) information is unimodal in θ with its peak at
    :math:`\\theta^* = b + \\frac1a\\log\\frac{1+\\sqrt{1+8c}}{2}` (Lord 1980, eq. 10-4; Birnbaum
    1968), so its maximum over a cell ``[l, u]`` is :math:`I(\\theta^*)` when the peak lies
    inside and :math:`\\max(I(l), I(u))` otherwise. Items are sorted per cell (and per item
    group, e.g. blueprint domain) by that bound. Selection evaluates the exact information
    only for the first items of the list and accepts the best when it beats the bound of
    the next one -- the answer is the argmax over all items (ties to the lower index).

    Attributes
    ----------
    lo, h : float -- the cells are ``[lo + j h, lo + (j + 1) h]``
    order : ``(G, C, W)`` int -- items by decreasing bound (-1 padding)
    bound : ``(G, C, W + 1)`` float -- the sorted bounds (-inf padding)
    """

    lo: float
    h: float
    order: np.ndarray
    bound: np.ndarray

    @classmethod
    def build(cls, a, b, c, groups: list[np.ndarray], lo: float, hi: float, h: float = 0.05) -> MFIIndex:
        n_cells = int(np.ceil((hi - lo) / h))
        edges = lo + h * np.arange(n_cells + 1)
        f_edges = info_3pl(edges[:, None], a, b, c)  # (C+1, I)
        peak = b + np.log((1.0 + np.sqrt(1.0 + 8.0 * c)) / 2.0) / a
        f_peak = info_3pl(peak, a, b, c)
        inside = (peak[None, :] >= edges[:-1, None]) & (peak[None, :] <= edges[1:, None])
        ub = np.where(inside, f_peak[None, :], np.maximum(f_edges[:-1], f_edges[1:]))
        ub = ub * (1.0 + 1e-9) + 1e-300  # guard against rounding in the exact evaluation
        width = max(g.size for g in groups)
        order = np.full((len(groups), n_cells, width), -1, dtype=np.int64)
        bound = np.full((len(groups), n_cells, width + 1), -np.inf)
        for gi, members in enumerate(groups):
            if members.size == 0:
                continue
            sub = ub[:, members]
            idx = np.argsort(-sub, axis=1, kind="stable")
            order[gi, :, : members.size] = members[idx]
            bound[gi, :, : members.size] = np.take_along_axis(sub, idx, axis=1)
        return cls(float(lo), float(h), order, bound)

    @property
    def n_cells(self) -> int:
        return self.order.shape[1]

    def cell(self, theta) -> np.ndarray:
        """Cell of each θ, or -1 outside the indexed range."""
        j = np.floor((np.asarray(theta, dtype=float) - self.lo) / self.h).astype(np.int64)
        return np.where((j >= 0) & (j < self.n_cells), j, -1)
