"""Online calibration of 50 pretest items from 20,000 CAT records.

The CMCS design on a seeded synthetic bank of 1,000 operational and 50 pretest 2PL items; 20,000 simulees from
N(0.5, 1.2²), each test seeding 5 pretest items (about 2,000 answers per pretest item). Each method is timed
once on the same records (best of ``--repeat``); RMSE against the true parameters. No peer runs these methods
in Python (R's mirt ``fixedCalib`` cannot be installed here), so there is no peer column.

    .venv/bin/python benchmarks/bench_online.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from adaptive import ExamDesign, ItemBank
from adaptive.answers import Records
from adaptive.calibration import calibrate
from adaptive.calibration.online import online_calibrate
from adaptive.cat.posthoc import simulate_cat
from adaptive.resources import pool_path
from adaptive.simulation.recovery import ONLINE_VARIANTS
from adaptive.synthetic import synthetic_bank


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--candidates", type=int, default=20_000)
    args = ap.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    blueprint = ItemBank.from_json(pool_path("cmcs") / "bank.json").blueprint
    bank = synthetic_bank(1050, model="2pl", blueprint=blueprint, pretest=50 / 1050, rng=20261202)
    design = ExamDesign.load(pool_path("cmcs") / "design.json")
    theta = np.random.default_rng(1).normal(0.5, 1.2, args.candidates)
    t0 = time.perf_counter()
    rec = Records.from_cat(simulate_cat(design, bank, thetas=theta, seed=2), scored_only=False)
    print(f"# {args.candidates:,} CAT records in {time.perf_counter() - t0:.1f} s: {rec.n_records:,} answers")
    pretest = [it.id for it in bank.items if it.status == "pretest"]
    ta = np.array([bank.items[bank.index[i]].a for i in pretest])
    tb = np.array([bank.items[bank.index[i]].b for i in pretest])
    start = ItemBank(name=bank.name, blueprint=bank.blueprint,
                     items=[it.model_copy(update={"a": 1.0, "b": 0.0}) if it.status == "pretest" else it
                            for it in bank.items])
    operational = [it for it in bank.items if it.status != "pretest"]
    print("| method | best s | cycles | RMSE a | RMSE b |")
    print("|---|---:|---:|---:|---:|")
    for method, update in ONLINE_VARIANTS:
        best, cycles = np.inf, 1
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            if method == "FIPC":
                x = rec.dense()
                used = np.flatnonzero(np.isfinite(x).any(axis=0))
                ids = [bank.ids[j] for j in used]
                fit = calibrate(x[:, used], model="2pl", item_ids=ids,
                                fixed=ItemBank(items=[it.model_copy(update={"enemies": []}) for it in operational
                                                      if it.id in set(ids)]))
                got = {it.id: it for it in fit.bank.items}
                a, b, cycles = np.array([got[i].a for i in pretest]), np.array([got[i].b for i in pretest]), fit.n_iter
            else:
                fit = online_calibrate(start, rec, pretest, method=method, prior_update=update)
                a, b, cycles = fit.a, fit.b, fit.n_iter
            best = min(best, time.perf_counter() - t0)
        label = method if method in ("FIPC", "stocking_a") else f"{method}-{update}"
        print(f"| {label} | {best:.2f} | {cycles} | {np.sqrt(np.mean((a - ta) ** 2)):.3f} | "
              f"{np.sqrt(np.mean((b - tb) ** 2)):.3f} |")


if __name__ == "__main__":
    main()
