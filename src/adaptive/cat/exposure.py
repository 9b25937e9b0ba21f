"""Exposure control: randomesque choice, maximum exposure rate and Sympson–Hetter, vectorized.

The three combine (see :class:`~adaptive.cat.design.ExposureSpec`):

* :class:`Randomesque` turns a criterion matrix into a choice: the best eligible item (ties to
  the lower index) or a draw among the ``k`` best (Kingsbury & Zara 1989);
* :class:`MaxRate` removes items whose exposure rate so far reached the ceiling from the
  eligible set (restricted maximum exposure, Revuelta & Ponsoda 1998);
* :class:`SympsonHetter` administers a selected item with probability ``K_i`` (Sympson &
  Hetter 1985), or ``K_is`` for the θ̂ stratum ``s`` of the session (Stocking & Lewis 1998).

Every draw comes from the session's own stream (:mod:`adaptive.cat._streams`), so a session's
choices do not depend on the batch it runs in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._streams import uniforms

if TYPE_CHECKING:
    from .context import CatContext
    from .state import BatchState

__all__ = ["Randomesque", "MaxRate", "SympsonHetter", "draw_among_best"]


def draw_among_best(best: np.ndarray, n_valid: np.ndarray, keys: np.ndarray, step: np.ndarray) -> np.ndarray:
    """One of the first ``n_valid[r]`` entries of row ``r`` of ``best`` ``(n, k)``, uniformly; -1 where none."""
    u = uniforms(keys, step, "randomesque")
    pick = np.minimum((u * np.maximum(n_valid, 1)).astype(int), np.maximum(n_valid - 1, 0))
    return np.where(n_valid > 0, best[np.arange(best.shape[0]), pick], -1)


class Randomesque:
    """Choose the best eligible item, or draw among the ``k`` best."""

    def __init__(self, k: int = 1):
        self.k = int(k)

    def choose(self, crit: np.ndarray, eligible: np.ndarray, keys: np.ndarray, step: np.ndarray,
               k: int | None = None) -> np.ndarray:
        """Item per row of ``crit`` ``(n, I)`` among ``eligible`` ``(n, I)``; -1 where no item is eligible."""
        k = self.k if k is None else int(k)
        crit = np.where(eligible, crit, -np.inf)
        if k == 1:
            best = np.argmax(crit, axis=1)
            found = np.isfinite(crit[np.arange(crit.shape[0]), best])
            return np.where(found, best, -1)
        order = np.argsort(-crit, axis=1, kind="stable")[:, :k]
        top = np.take_along_axis(crit, order, axis=1)
        return draw_among_best(order, np.isfinite(top).sum(axis=1), keys, step)


class MaxRate:
    """Items whose exposure rate reached ``rate`` are not eligible (None: no ceiling)."""

    def __init__(self, rate: float | None):
        self.rate = rate

    def item_ok(self, ctx: CatContext, state: BatchState) -> np.ndarray | None:
        """``(I,)`` bool of items still under the ceiling, or None when there is no ceiling."""
        if self.rate is None:
            return None
        return state.exposure_counts < self.rate * max(state.n_sessions, 1)


class SympsonHetter:
    """Probabilistic administration of selected items (off when the design does not ask for it)."""

    def __init__(self, ctx: CatContext):
        ex = ctx.design.exposure
        self.enabled = bool(ex.sympson_hetter)
        self.strata = np.asarray(ex.strata, dtype=float)
        table = ctx.arrays.exposure_conditional
        self.conditional = table if (self.strata.size and table.shape[1] == self.strata.size + 1) else None
        self.exposure = ctx.arrays.exposure

    def parameter(self, theta: np.ndarray, items: np.ndarray) -> np.ndarray:
        """K of ``items``; conditional on the θ̂ stratum when the design has strata and the bank their parameters."""
        if self.conditional is None:
            return self.exposure[items]
        return self.conditional[items, np.searchsorted(self.strata, theta, side="right")]

    def accepts(self, state: BatchState, rows: np.ndarray, items: np.ndarray, attempt: int) -> np.ndarray:
        """Whether each session of ``rows`` administers its selected item (attempt-th draw of the step)."""
        u = uniforms(state.keys[rows], state.n_given[rows] * 4096 + attempt, "sympson_hetter")
        return u < self.parameter(state.theta[rows], items)
