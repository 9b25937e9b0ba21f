"""Simulation-study benchmarks.

(a) The engine issue's design end to end: 500-item 3PL pool (tests/data/cat/pool_500_3pl.csv),
    10,000 simulees θ ~ N(0, 1), MFI from θ = 0, EAP on 33 points in [-4, 4], 30 items. Ours:
    ``adaptive.simulation.run_study`` (simulation, every metric: precision, conditional metrics,
    exposure, overlap, length distribution) and ``write_report`` (CSV/JSON, five figures, HTML).
    Beside it, in the same run, the PyPI ``mirt`` package's batch simulation of the same design
    (simulation only: it has no study metrics or reports), when importable.
(b) 1,000,000 simulees of the same design in chunks of 20,000, tables only: time and peak memory
    (``ru_maxrss`` of this process).

Run::

    benchmarks/.peers-venv/bin/python benchmarks/bench_simulation.py [--skip-million]
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from adaptive import ItemBank
from adaptive.simulation.report import write_report, write_tables
from adaptive.simulation.study import StudyConfig, run_study

ROOT = Path(__file__).resolve().parents[1]
POOL = ROOT / "tests" / "data" / "cat" / "pool_500_3pl.csv"
sys.path.insert(0, str(Path(__file__).parent))


def study(n: int, chunk: int, out: Path) -> StudyConfig:
    bank = ItemBank.from_csv(POOL)
    bank.to_json(out / "pool.json")
    return StudyConfig.model_validate({
        "name": f"catR design, {n:,} simulees", "seed": 1, "bank": {"path": "pool.json"},
        "design": {"min_length": 30, "max_length": 30, "estimator": {"grid": [-4, 4, 33]},
                   "content": {"method": "none"}},
        "simulees": {"n": n, "chunk_size": chunk}, "base_dir": str(out)})


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--skip-million", action="store_true")
    args = p.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        cfg = study(10_000, 10_000, out)
        t0 = time.perf_counter()
        res = run_study(cfg)
        t1 = time.perf_counter()
        write_report(res, out / "report")
        t2 = time.perf_counter()
        m = res.metrics[0]
        rows.append(("adaptive: study + report", 10_000, t1 - t0, t2 - t0, m["rmse"], m["bias"], m["mean_se"]))
        print(f"adaptive 10,000: simulation + metrics {t1 - t0:.2f} s, report {t2 - t1:.2f} s, "
              f"RMSE {m['rmse']:.3f}, bias {m['bias']:+.3f}, mean SE {m['mean_se']:.3f}", flush=True)
        try:
            from bench_cat import run_mirt

            theta = np.random.default_rng(1).normal(0, 1, 10_000)
            times, (rmse, bias, mse) = run_mirt(ItemBank.from_csv(POOL), theta, 1)
            rows.append(("mirt (PyPI) batch simulation only", 10_000, times[0], times[0], rmse, bias, mse))
            print(f"mirt 10,000: {times[0]:.2f} s", flush=True)
        except ImportError:
            print("mirt (PyPI) not importable: run with benchmarks/.peers-venv/bin/python", flush=True)
        print("\n| engine | simulees | simulate + metrics (s) | end to end with report (s) | ratio to adaptive "
              "| RMSE | bias | mean SE |\n|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r[0]} | {r[1]:,} | {r[2]:.2f} | {r[3]:.2f} | {r[3] / rows[0][3]:.1f}x | {r[4]:.3f} | "
                  f"{r[5]:+.3f} | {r[6]:.3f} |")
        if not args.skip_million:
            before = peak_mb()
            cfg = study(1_000_000, 20_000, out)
            t0 = time.perf_counter()
            res = run_study(cfg)
            t1 = time.perf_counter()
            write_tables(res, out / "million")
            m = res.metrics[0]
            print(f"\n1,000,000 simulees (chunks of 20,000): {t1 - t0:.1f} s ({(t1 - t0) * 1e6 / 1_000_000:.0f} µs per "
                  f"simulee), peak RSS {peak_mb():.0f} MB (before: {before:.0f} MB); RMSE {m['rmse']:.4f}, bias "
                  f"{m['bias']:+.4f}, mean SE {m['mean_se']:.4f}, max exposure {m['max_exposure']:.3f}")


if __name__ == "__main__":
    main()
