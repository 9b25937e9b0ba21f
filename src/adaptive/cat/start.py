"""Start rules: where each session's test begins, vectorized over sessions.

A start rule gives every session its starting θ and, optionally, the first items to give
(before the selection rule takes over). Rules are registered by the name a design's
``start.kind`` uses (:data:`~adaptive.cat.registry.START_RULES`):

=============  ==========================================================================
name           start
=============  ==========================================================================
fixed_theta    θ = ``start.theta``; the first item comes from the selection rule
random_theta   θ drawn uniformly from ``[start.low, start.high]`` per session
items          the first ``n_items`` items from ``item_ids`` (in order, or shuffled), or
               drawn among the ``window`` operational items whose difficulty is nearest
               ``start.theta``
=============  ==========================================================================

Pretest positions are drawn here too: ``pretest_items`` positions among the first
``min_length + pretest_items - 1``, so every pretest item is given before the earliest stop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._streams import uniforms
from .registry import START_RULES

if TYPE_CHECKING:
    from .context import CatContext

__all__ = ["StartRule", "FixedTheta", "RandomTheta", "StartItems", "pretest_slots"]


class StartRule:
    """Protocol of a start rule: starting θ and first items per session (by key)."""

    name: str = ""

    def __init__(self, ctx: CatContext):
        self.spec = ctx.design.start

    def initial_theta(self, ctx: CatContext, keys: np.ndarray) -> np.ndarray:
        """Starting θ of each session, ``(N,)``."""
        return np.full(keys.size, float(self.spec.theta))

    def first_items(self, ctx: CatContext, keys: np.ndarray) -> np.ndarray:
        """Bank indices of the items each session takes first, ``(N, S)`` (S may be 0)."""
        return np.full((keys.size, 0), -1, dtype=np.int64)


@START_RULES.register("fixed_theta")
class FixedTheta(StartRule):
    """Every session starts at ``start.theta``."""


@START_RULES.register("random_theta")
class RandomTheta(StartRule):
    """θ drawn uniformly from ``[start.low, start.high]`` per session."""

    def initial_theta(self, ctx: CatContext, keys: np.ndarray) -> np.ndarray:
        return self.spec.low + (self.spec.high - self.spec.low) * uniforms(keys, 0, "start")


@START_RULES.register("items")
class StartItems(StartRule):
    """The first ``n_items`` items are named (in order or shuffled) or drawn near ``start.theta``."""

    def first_items(self, ctx: CatContext, keys: np.ndarray) -> np.ndarray:
        st = self.spec
        out = np.full((keys.size, st.n_items), -1, dtype=np.int64)
        if ctx.start_ids.size:
            if st.shuffle:
                u = uniforms(keys, 0, "start_items", width=ctx.start_ids.size)
                out[:] = ctx.start_ids[np.argsort(u, axis=1)[:, : st.n_items]]
            else:
                out[:] = ctx.start_ids[None, : st.n_items]
            return out
        pool = np.flatnonzero(ctx.scored_pool)
        near = pool[np.argsort(np.abs(ctx.difficulty[pool] - st.theta), kind="stable")[: max(st.window, st.n_items)]]
        u = uniforms(keys, 0, "start_items", width=near.size)
        out[:] = near[np.argsort(u, axis=1)[:, : st.n_items]]
        return out


def pretest_slots(ctx: CatContext, keys: np.ndarray) -> np.ndarray:
    """``(N, L)`` bool: the positions that hold pretest items."""
    d = ctx.design
    slots = np.zeros((keys.size, ctx.max_positions), dtype=bool)
    if d.pretest_items:
        window = d.min_length + d.pretest_items - 1  # all pretest items come before the earliest stop
        u = uniforms(keys, 0, "pretest_positions", width=window)
        np.put_along_axis(slots, np.argsort(u, axis=1)[:, : d.pretest_items], True, axis=1)
    return slots
