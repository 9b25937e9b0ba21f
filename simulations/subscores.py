"""CMCS domain subscores: a multidimensional design (each content domain a factor) against the unidimensional one
on the same simulees -- per-domain bias, RMSE, reliability, Haberman's PRMSE criterion, and the length cost.

    python simulations/subscores.py                         # 2,000 simulees, domain correlation 0.8, 40 items
    python simulations/subscores.py --correlation 0.6 --length 60 --csv subscores.csv

See adaptive.simulation.subscores for the design of the study.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from adaptive import ItemBank
from adaptive.simulation.subscores import subscore_study

HERE = Path(__file__).resolve().parent


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bank", default=str(HERE.parent / "item_pools" / "cmcs" / "bank.json"),
                    help="item bank with domains and a blueprint (default: the CMCS pool)")
    ap.add_argument("--simulees", type=int, default=2000, help="simulees (default: 2000)")
    ap.add_argument("--correlation", type=float, default=0.8, help="correlation of the domains (default: 0.8)")
    ap.add_argument("--length", type=int, default=40, help="test length of both designs (default: 40)")
    ap.add_argument("--se-target", type=float, default=0.5, help="SE target of the length comparison (default: 0.5)")
    ap.add_argument("--seed", type=int, default=20261202, help="random seed (default: 20261202)")
    ap.add_argument("--csv", default=None, help="write the per-domain table to this CSV file (default: none)")
    args = ap.parse_args(argv)
    res = subscore_study(ItemBank.from_json(args.bank), n=args.simulees, correlation=args.correlation,
                         length=args.length, se_target=args.se_target, rng=args.seed)
    print(f"{res.n_simulees} simulees, domain correlation {res.correlation}, {res.length} items in both designs")
    print(f"{'domain':<16}{'pool':>5}{'items':>6}{'bias':>7}{'RMSE':>7}{'rel':>6}{'PRMSE sub':>10}{'PRMSE tot':>10}"
          f"{'PRMSE MIRT':>11}  added value")
    for r in res.to_records():
        print(f"{r['domain']:<16}{r['pool_items']:>5}{r['mean_items']:>6.1f}{r['bias']:>7.3f}{r['rmse']:>7.3f}"
              f"{r['reliability']:>6.2f}{r['prmse_subscore']:>10.3f}{r['prmse_total']:>10.3f}"
              f"{r['prmse_multidim']:>11.3f}  {'yes' if r['added_value'] else 'no'}")
    print(f"items to SE <= {res.se_target}: total score (unidimensional CAT) {res.length_unidim_to_target:.1f}, every "
          f"domain (MCAT) {res.length_multidim_to_target:.1f}")
    if args.csv:
        res.to_csv(args.csv)


if __name__ == "__main__":
    main()
