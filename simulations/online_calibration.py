"""Online calibration of pretest items from CAT data: OEM, MEM (three prior updates), Stocking's method A and
fixed-parameter calibration, over the number of candidates who answer each pretest item.

The CMCS design on a seeded synthetic bank of 1,000 operational and 50 pretest 2PL items (CMCS blueprint);
each test seeds 5 pretest items, so 300 / 1,000 / 3,000 answers per pretest item take 3,000 / 10,000 / 30,000
simulees. The population is N(0.5, 1.2²), off the bank's N(0, 1) scale, as a new cohort would be. Prints mean
bias and RMSE of a and b over the replications, and writes online_calibration.csv and .png to --out.

    python simulations/online_calibration.py --out out/online [--replications 3]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from adaptive import ExamDesign, ItemBank
from adaptive.htmlpage import figure_png
from adaptive.plotting import styled
from adaptive.resources import pool_path
from adaptive.simulation.recovery import online_recovery_study
from adaptive.synthetic import synthetic_bank


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--replications", type=int, default=3, help="replications per sample size (default 3)")
    p.add_argument("--sizes", type=int, nargs="+", default=[300, 1000, 3000], help="answers per pretest item")
    p.add_argument("--out", default="out/online", help="output directory (default out/online)")
    args = p.parse_args(argv)
    blueprint = ItemBank.from_json(pool_path("cmcs") / "bank.json").blueprint
    bank = synthetic_bank(1050, model="2pl", blueprint=blueprint, pretest=50 / 1050, rng=20261202)
    design = ExamDesign.load(pool_path("cmcs") / "design.json")
    rows = []
    for n in args.sizes:
        rows += online_recovery_study(design, bank, n, replications=args.replications, seed=7)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "online_calibration.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    print("| method | answers per item | bias a | RMSE a | bias b | RMSE b | seconds |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    summary = {}
    for m in methods:
        for n in args.sizes:
            sel = [r for r in rows if r["method"] == m and r["per_item"] == n]
            s = {k: float(np.mean([r[k] for r in sel])) for k in ("bias_a", "rmse_a", "bias_b", "rmse_b", "seconds")}
            summary[m, n] = s
            print(f"| {m} | {n} | {s['bias_a']:+.3f} | {s['rmse_a']:.3f} | {s['bias_b']:+.3f} | {s['rmse_b']:.3f} | "
                  f"{s['seconds']:.2f} |")
    with styled() as plt:
        fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.6), layout="constrained")
        for m in methods:
            for ax, key in zip(axes, ("rmse_a", "rmse_b")):
                ax.plot(args.sizes, [summary[m, n][key] for n in args.sizes], marker="o", label=m)
        for ax, title in zip(axes, ("RMSE of a", "RMSE of b")):
            ax.set(xscale="log", title=title, xlabel="answers per pretest item")
            ax.set_xticks(args.sizes, [str(n) for n in args.sizes])
            ax.xaxis.set_minor_formatter(plt.NullFormatter())  # plain labels: no mathtext fonts needed
        axes[1].legend(fontsize=8)
        (out / "online_calibration.png").write_bytes(figure_png(fig))
        plt.close(fig)
    print(f"wrote {out / 'online_calibration.csv'} and {out / 'online_calibration.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
