"""Calibrate a simulated CMCS field test: three 60-item forms sharing 20 anchor items (70% missing overall).

    python calibration/calibrate_field_test.py          # prints the summary, writes out/field_test_bank.json
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import adaptive
from adaptive.synthetic import simulate_responses, synthetic_bank

SEED = 20261124
OUT = Path(__file__).parent / "out"


def field_test_data(seed=SEED):
    truth = synthetic_bank(140, model="2pl", rng=seed)
    rng = np.random.default_rng(seed + 1)
    n_per_form = 1500
    theta = rng.standard_normal(3 * n_per_form)
    x = simulate_responses(truth.compile(), theta, rng=seed + 2)
    anchors = np.arange(20)
    forms = [np.r_[anchors, 20 + 40 * f + np.arange(40)] for f in range(3)]
    given = np.zeros_like(x, dtype=bool)
    for f, items in enumerate(forms):
        given[f * n_per_form:(f + 1) * n_per_form, items] = True
    x[~given] = np.nan
    return truth, x


def main():
    truth, x = field_test_data()
    print(f"{x.shape[0]} candidates x {x.shape[1]} items, {np.isnan(x).mean():.0%} not administered")
    result = adaptive.calibrate(x, model="2pl", item_ids=truth.ids, name="cmcs-field-test")
    print(result.summary())
    arr = truth.compile()
    print(f"\nrecovery: RMSE a {np.sqrt(np.mean((result.a - arr.a) ** 2)):.3f}, "
          f"RMSE b {np.sqrt(np.mean((result.thresholds[:, 0] - arr.thresholds[:, 0]) ** 2)):.3f}")
    OUT.mkdir(exist_ok=True)
    result.bank.to_json(OUT / "field_test_bank.json")
    print(f"wrote {OUT / 'field_test_bank.json'}")


if __name__ == "__main__":
    main()
