"""Randomness is explicit: one normalization of ``rng`` arguments (DESIGN.md convention 9)."""

from __future__ import annotations

import numpy as np

__all__ = ["as_generator", "spawn"]


def as_generator(rng=None) -> np.random.Generator:
    """A ``numpy.random.Generator`` from a Generator, an int seed, a SeedSequence or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, np.random.RandomState):
        raise TypeError("pass a numpy.random.Generator (np.random.default_rng(seed)) or an int seed, not RandomState")
    return np.random.default_rng(rng)


def spawn(seed, n: int) -> list[np.random.Generator]:
    """``n`` independent child generators of ``seed`` (an int or SeedSequence), one per session or simulee."""
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return [np.random.default_rng(child) for child in ss.spawn(n)]
