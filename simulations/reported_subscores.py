"""The CMCS report's domain subscores on simulees with known domain abilities: bias, RMSE, the reliability the
reports state against the empirical one, the coverage of subscore ± 1.96 SE, and Haberman's PRMSE of the subscore,
the total score and each domain's answers alone.

    python simulations/reported_subscores.py                  # 2,000 simulees through the CMCS exam as delivered
    python simulations/reported_subscores.py --simulees 500 --csv reported.csv

See adaptive.simulation.reported_subscores for the design of the study.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from adaptive import ItemBank
from adaptive.cat import ExamDesign
from adaptive.simulation.reported_subscores import reported_subscores

HERE = Path(__file__).resolve().parent


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pool", default=str(HERE.parent / "item_pools" / "cmcs"),
                    help="pool directory with bank.json, design.json and subscores.json (default: the CMCS pool)")
    ap.add_argument("--simulees", type=int, default=2000, help="simulees (default: 2000)")
    ap.add_argument("--seed", type=int, default=20261202, help="random seed (default: 20261202)")
    ap.add_argument("--csv", default=None, help="write the per-domain table to this CSV file (default: none)")
    args = ap.parse_args(argv)
    pool = Path(args.pool)
    res = reported_subscores(ExamDesign.load(pool / "design.json"), ItemBank.load(pool), n=args.simulees,
                             seed=args.seed)
    print(f"{res.n_simulees} simulees, {res.mean_length:.1f} scored items on average")
    print(f"{'domain':<16}{'items':>6}{'bias':>7}{'RMSE':>7}{'rel stated':>11}{'rel found':>10}{'coverage':>9}"
          f"{'PRMSE total':>12}{'PRMSE alone':>12}")
    for r in res.to_records():
        print(f"{r['domain']:<16}{r['mean_items']:>6.1f}{r['bias']:>7.3f}{r['rmse']:>7.3f}"
              f"{r['reported_reliability']:>11.3f}{r['empirical_reliability']:>10.3f}{r['coverage']:>9.3f}"
              f"{r['prmse_total']:>12.3f}{r['prmse_domain_alone']:>12.3f}")
    if args.csv:
        res.to_csv(args.csv)


if __name__ == "__main__":
    main()
