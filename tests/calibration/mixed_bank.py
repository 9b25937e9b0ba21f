"""A seeded bank that mixes families (2PL, 3PL, graded, GPCM), shared by the E-step and PX-EM tests."""

from __future__ import annotations

import numpy as np

from adaptive import ItemBank


def mixed_bank(rng: np.random.Generator, n_items: int, cycle: tuple, a_range: tuple) -> ItemBank:
    """Items ``M00..``: model ``cycle[j % len(cycle)]``, ``a ~ U(a_range)``, graded items 3 sorted thresholds in
    [-1.5, 1.5], GPCM items 2 steps in [-1.2, 1.2], dichotomous ``b ~ U(-1.5, 1.5)``, 3PL ``c = 0.2``."""
    items = []
    for j in range(n_items):
        model = cycle[j % len(cycle)]
        rec = {"id": f"M{j:02d}", "model": model, "a": float(rng.uniform(*a_range))}
        if model == "graded":
            rec["thresholds"] = sorted(rng.uniform(-1.5, 1.5, 3).tolist())
        elif model == "gpcm":
            rec["thresholds"] = sorted(rng.uniform(-1.2, 1.2, 2).tolist())
        else:
            rec["b"] = float(rng.uniform(-1.5, 1.5))
        if model == "3pl":
            rec["c"] = 0.2
        items.append(rec)
    return ItemBank(items=items)
