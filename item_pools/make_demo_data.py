"""Regenerate the bundled demo response file (seeded, exact).

    python item_pools/make_demo_data.py

Writes src/adaptive/data/cmcs_demo_responses.csv: 12 simulated candidates (θ ~ N(0.3, 0.9)) on the
CMCS 75-item reference form (item_pools/cmcs/standard.json), answers drawn from the bank's calibrated
3PL parameters. `adaptive score` reads it in the README's examples. Run it after
calibration/calibrate_item_pools.py whenever the CMCS bank changes.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from adaptive import ItemBank
from adaptive.synthetic import simulate_responses

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "src" / "adaptive" / "data"
SEED = 20261124


def main() -> None:
    pool = ROOT / "item_pools" / "cmcs"
    bank = ItemBank.from_json(pool / "bank.json")
    form = json.loads((pool / "standard.json").read_text())["reference_form"]
    rng = np.random.default_rng(SEED)
    theta = rng.normal(0.3, 0.9, 12)
    x = simulate_responses(bank.compile().subset([bank.index[i] for i in form]), theta, rng=rng)
    out = DATA / "cmcs_demo_responses.csv"
    with out.open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["candidate", *form])
        for n in range(theta.size):
            w.writerow([f"C{n + 1:03d}"] + [str(int(v)) for v in x[n]])
    print(f"wrote {out} ({theta.size} candidates x {len(form)} items of the CMCS reference form)")


if __name__ == "__main__":
    main()
