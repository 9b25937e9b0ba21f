"""Seeded simulation of the CMCS and CMRS adaptive designs on their banks (pass rates, blueprint).

    python item_pools/simulate_pools.py [--simulees 10000]

Simulees have θ ~ N(0, 1), the field-test population that defines each bank's scale. Prints, per
pool: pass rate, true pass rate (θ ≥ θcut), classification accuracy, false-pass and false-fail
rates, test length, share of tests meeting the blueprint, largest item exposure and share of
operational items never used. item_pools/README.md quotes this output.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from adaptive import ItemBank
from adaptive.cat import ExamDesign, simulate_cat
from adaptive.simulation import blueprint_conformance, classification, exposure_rates

ROOT = Path(__file__).resolve().parents[1]
SEED = 20261124


def simulate_pool(name: str, n: int, seed: int = SEED):
    bank = ItemBank.from_json(ROOT / "item_pools" / name / "bank.json")
    design = ExamDesign.load(ROOT / "item_pools" / name / "design.json")
    theta = np.random.default_rng(seed).normal(0.0, 1.0, n)
    result = simulate_cat(design, bank, thetas=theta, seed=seed)
    return bank, design, theta, result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--simulees", type=int, default=10000)
    args = p.parse_args(argv)
    print(f"{'pool':5} {'pass':>6} {'true':>6} {'acc':>6} {'FP':>6} {'FF':>6} {'length':>13} {'bp ok':>6} "
          f"{'max exp':>7} {'unused':>6}")
    for name in ("cmcs", "cmrs"):
        bank, design, theta, res = simulate_pool(name, args.simulees)
        c = classification(res.decision, theta, design.theta_cut)
        ok = blueprint_conformance(res, bank)
        operational = np.array([it.status == "operational" for it in bank.items])
        r = exposure_rates(res, len(bank))[operational]
        print(f"{name:5} {c.pass_rate:6.3f} {c.true_pass_rate:6.3f} {c.accuracy:6.3f} {c.false_pass:6.3f} "
              f"{c.false_fail:6.3f} {res.n_items.mean():5.1f} [{res.n_items.min()}-{res.n_items.max()}] "
              f"{ok.mean():6.3f} {r.max():7.3f} {np.mean(r == 0):6.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
