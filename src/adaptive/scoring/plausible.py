"""Plausible values: draws from each examinee's posterior (Mislevy 1991)."""

from __future__ import annotations

import numpy as np

from .._random import as_generator
from ..irt.arrays import cell_edges
from .estimators import ThetaEstimate

__all__ = ["plausible_values"]


def plausible_values(estimate: ThetaEstimate, n_draws: int = 5, rng=None) -> np.ndarray:
    """Draw plausible values from the grid posterior of an EAP estimate.

    The posterior mass of grid point :math:`\\theta_q` is spread uniformly over
    its cell (midpoints between neighbouring points), so draws are continuous
    and their distribution converges to the grid posterior; the draws'
    mean and variance match the EAP and posterior variance up to the
    cell-width term :math:`h^2/12`.

    Parameters
    ----------
    estimate : ThetaEstimate from EAP (it carries the grid posterior)
    n_draws : int
    rng : numpy Generator, int seed or None

    Returns
    -------
    ndarray, ``(N, n_draws)``
    """
    if estimate.log_posterior is None or estimate.grid is None:
        raise ValueError("plausible values need an EAP estimate (it carries the posterior on the grid)")
    if int(n_draws) < 1:
        raise ValueError(f"n_draws must be >= 1, got {n_draws!r}")
    rng = as_generator(rng)
    grid = estimate.grid
    edges = cell_edges(grid)
    cdf = np.cumsum(np.exp(estimate.log_posterior), axis=1)
    cdf /= cdf[:, -1:]
    u = rng.random((cdf.shape[0], int(n_draws)))
    # index of the cell holding each draw, per examinee (vectorized searchsorted over rows)
    cell = (cdf[:, None, :] < u[:, :, None]).sum(axis=2)
    cell = np.minimum(cell, grid.size - 1)
    rows = np.arange(cdf.shape[0])[:, None]
    upper = cdf[rows, cell]
    lower = np.where(cell > 0, cdf[rows, np.maximum(cell - 1, 0)], 0.0)
    frac = np.where(upper > lower, (u - lower) / np.where(upper > lower, upper - lower, 1.0), 0.5)
    return edges[cell] + frac * (edges[cell + 1] - edges[cell])
