"""``category_counts``: the one pass over calibration data that both validates the cells and counts each item's
categories (:mod:`adaptive.scoring.responses`), against a cell-by-cell tally (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from adaptive.scoring.responses import category_counts


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 40), st.integers(1, 6), st.integers(2, 5), st.floats(0.0, 0.9), st.integers(0, 2 ** 31 - 1),
       st.sampled_from([None, -1.0, 0.5, np.inf, -np.inf, 1001.0]))
def test_category_counts_against_a_cell_by_cell_tally(n, n_items, k, missing, seed, poison):
    """The one-pass counts that validate and summarize calibration data, against counting cell by cell."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, k, (n, n_items)).astype(float)
    x[rng.random(x.shape) < missing] = np.nan
    if poison is not None:
        x[rng.integers(n), rng.integers(n_items)] = poison
    out = category_counts(x)
    cells = [(i, v) for row in x for i, v in enumerate(row) if not np.isnan(v)]
    if any(v < 0 or v > 1000 or v != int(v) for _, v in cells):
        assert out is None
        return
    answered, counts = out
    top = max([int(v) for _, v in cells], default=0)
    assert counts.shape == (n_items, max(top, 1) + 1)
    tally = np.zeros(counts.shape, int)
    for i, v in cells:
        tally[i, int(v)] += 1
    np.testing.assert_array_equal(counts, tally)
    np.testing.assert_array_equal(answered, tally.sum(axis=1))
