"""Calibrate the CMCS and CMRS item pools on their simulated field tests (seeded, exact).

    python calibration/calibrate_item_pools.py            # both pools
    python calibration/calibrate_item_pools.py cmcs       # one pool
    python calibration/calibrate_item_pools.py --check    # rebuild in memory, compare with the files

For each pool directory item_pools/<pool>/ this reads items.toml (the authored items) and pool.toml
(blueprint, field-test settings, calibration settings, pass standard, exam design), then
  1. draws generating parameters per item (difficulty by cognitive level; seed in pool.toml),
  2. simulates the field test: spiraled forms sharing anchor items, N(0, 1) candidates,
  3. calibrates every item with adaptive.calibrate (3PL, c ~ Beta(6, 16), 61 points),
  4. derives the theta cut from the pass standard on the reference form (inverse TCC),
and writes bank.json (content + parameters + provenance), design.json and standard.json into the
pool directory and into the package's bundled copy (src/adaptive/data/pools/<pool>/).
A rerun reproduces every file byte for byte; --check says whether the files on disk are current.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from adaptive.pools import build_pool, write_pool

ROOT = Path(__file__).resolve().parents[1]
POOLS = ("cmcs", "cmrs")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("pools", nargs="*", help=f"pools to build (default: {' '.join(POOLS)})")
    p.add_argument("--check", action="store_true", help="do not write; exit 1 if a written file would change")
    args = p.parse_args(argv)
    unknown = [n for n in args.pools if n not in POOLS]
    if unknown:
        p.error(f"unknown pool(s) {unknown}; choose from {list(POOLS)}")
    args.pools = args.pools or list(POOLS)
    stale = []
    for name in args.pools:
        build = build_pool(ROOT / "item_pools" / name)
        res, std = build.calibration, build.standard
        n_op = sum(it.status == "operational" for it in build.bank.items)
        print(f"{name}: {len(build.bank)} items ({n_op} operational), field test {build.responses.shape[0]} "
              f"candidates, {res.n_iter} EM cycles, log-likelihood {res.loglik:.3f}")
        for par, r in build.recovery().items():
            print(f"  recovery of {par}: bias {r['bias']:+.4f}, RMSE {r['rmse']:.4f}")
        print(f"  standard: {std.method} {std.raw_cut:g} of {std.form_length} on the reference form -> "
              f"theta cut {std.theta_cut:.4f} (SEM at the cut {std.sem_at_cut:.3f})")
        targets = [ROOT / "item_pools" / name, ROOT / "src" / "adaptive" / "data" / "pools" / name]
        if args.check:
            with tempfile.TemporaryDirectory() as tmp:
                for new in write_pool(build, tmp):
                    for t in targets:
                        old = t / new.name
                        if not old.exists() or old.read_bytes() != new.read_bytes():
                            stale.append(str(old.relative_to(ROOT)))
        else:
            for t in targets:
                for path in write_pool(build, t):
                    print(f"  wrote {path.relative_to(ROOT)}")
    if stale:
        print("out of date: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
