"""Small shared pieces of the security statistics: flags from p-values, Stouffer's combination."""

from __future__ import annotations

import numpy as np


def below(p_values, alpha: float) -> np.ndarray:
    """``p < alpha``, with a missing p-value (NaN: no statistic) never flagged."""
    return np.nan_to_num(np.asarray(p_values, dtype=float), nan=1.0) < alpha


def stouffer(*zs) -> np.ndarray:
    """Stouffer's combination ``Σ z / sqrt(k)`` of the z-statistics available per entry (NaN where none is)."""
    stack = np.vstack([np.asarray(z, dtype=float) for z in zs])
    avail = np.isfinite(stack).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(avail > 0, np.nansum(stack, axis=0) / np.sqrt(np.maximum(avail, 1)), np.nan)
