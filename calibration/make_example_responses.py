"""Write calibration/examples/cmcs_responses.csv: 1,000 simulated candidates on the CMCS operational items.

The README's commands and tours read this file. Seeded: rerunning writes the same bytes (``--check`` verifies).
Candidates' abilities are N(0, 1); answers are drawn from the pool's calibrated 3PL parameters.

    python calibration/make_example_responses.py [--check]
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np

from adaptive import ItemBank
from adaptive.synthetic import simulate_responses

HERE = Path(__file__).resolve().parent
OUT = HERE / "examples" / "cmcs_responses.csv"
N_CANDIDATES, SEED = 1000, 20261202


def build() -> str:
    pool = ItemBank.from_json(HERE.parent / "item_pools" / "cmcs" / "bank.json")
    operational = [it for it in pool.items if it.status == "operational"]
    bank = ItemBank(name=pool.name, version=pool.version, scaling=pool.scaling, items=operational)
    rng = np.random.default_rng(SEED)
    x = simulate_responses(bank.compile(), rng.normal(size=N_CANDIDATES), rng=rng)
    out = io.StringIO()
    out.write("person," + ",".join(bank.ids) + "\n")
    for k, row in enumerate(x.astype(int)):
        out.write(f"C{k + 1:04d}," + ",".join(map(str, row)) + "\n")
    return out.getvalue()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="verify the file instead of writing it")
    args = p.parse_args()
    text = build()
    if args.check:
        same = OUT.exists() and OUT.read_text(encoding="utf-8") == text
        print(f"{OUT}: {'up to date' if same else 'DIFFERS: rerun without --check'}")
        return 0 if same else 1
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT} ({N_CANDIDATES} candidates x {text.count(',', 0, text.index(chr(10)))} items)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
