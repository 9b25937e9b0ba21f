"""Reading a large item bank: a 50 MB parameter CSV (880,000 3PL items) and the same bank as JSON.

Every item is validated (finite, plausible parameters; identifiers; duplicates and enemies across
items); the point is how long an exam program waits for a bank export of that size. The bank is
synthetic and seeded (20,000 items drawn by ``adaptive.synthetic.synthetic_bank``, repeated with
new ids), written to a temporary folder. No peer reads this format, so there is no peer column.

Run::

    .venv/bin/python benchmarks/bench_bank_load.py [--items 880000]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

from adaptive.bank import ItemBank
from adaptive.synthetic import synthetic_bank


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=880_000)
    args = ap.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        base = synthetic_bank(20_000, model="3pl", rng=1)
        base.to_csv(f"{tmp}/base.csv")
        header, *rows = open(f"{tmp}/base.csv", encoding="utf-8").read().splitlines()
        out = [header]
        for k in range(args.items):
            cells = rows[k % len(rows)].split(",")
            cells[0] = f"X{k:07d}"
            out.append(",".join(cells))
        path = f"{tmp}/bank.csv"
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(out) + "\n")
        size = os.path.getsize(path) / 1e6
        t = time.perf_counter()
        bank = ItemBank.from_csv(path)
        csv_s = time.perf_counter() - t
        bank.to_json(f"{tmp}/bank.json")
        t = time.perf_counter()
        ItemBank.load(f"{tmp}/bank.json")
        json_s = time.perf_counter() - t
    print("| file | items | MB | seconds | items/s |")
    print("|---|---|---|---|---|")
    print(f"| parameter CSV | {len(bank)} | {size:.1f} | {csv_s:.1f} | {len(bank) / csv_s:,.0f} |")
    print(f"| bank JSON | {len(bank)} | - | {json_s:.1f} | {len(bank) / json_s:,.0f} |")


if __name__ == "__main__":
    main()
