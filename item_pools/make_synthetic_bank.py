"""Write a seeded synthetic bank for simulation studies, tagged with a pool's blueprint.

    python item_pools/make_synthetic_bank.py --pool cmcs --items 2000 --seed 1 --out cmcs_synthetic_2000.json

Parameters follow adaptive.synthetic.synthetic_bank: log a ~ N(log 1.1, 0.3) (a clipped to
[0.35, 3]), b ~ N(-0.2, 1) (clipped to [-3.5, 3.5]), c ~ Beta(5, 17) for 3PL; items are allocated
to the pool's blueprint domains by largest remainder and a share is marked pretest. The same seed
writes the same file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from adaptive.pools import load_pool_config
from adaptive.synthetic import synthetic_bank

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pool", default="cmcs", choices=["cmcs", "cmrs"])
    p.add_argument("--items", type=int, default=2000)
    p.add_argument("--model", default="3pl", choices=["2pl", "3pl", "graded"])
    p.add_argument("--pretest", type=float, default=0.1, help="share of pretest items (default 0.1)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    bp = load_pool_config(ROOT / "item_pools" / args.pool).blueprint
    bank = synthetic_bank(args.items, model=args.model, blueprint=bp, pretest=args.pretest, rng=args.seed,
                          prefix=f"{args.pool.upper()}-SYN-", name=f"{args.pool}-synthetic-{args.items}")
    bank.to_json(args.out)
    print(f"wrote {args.out}: {len(bank)} {args.model} items on the {args.pool} blueprint (seed {args.seed})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
