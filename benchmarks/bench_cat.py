"""Adaptive-test benchmarks: batch simulation against the PyPI peers, and live next-item latency.

(a) The catR design of the engine issue: 500-item 3PL pool (``tests/data/cat/pool_500_3pl.csv``),
    10,000 simulees with θ ~ N(0, 1), first item by MFI at θ = 0, exact MFI, EAP with a N(0, 1)
    prior on 33 points on [-4, 4], 30 items. Engines: adaptive (``simulate_cat``), PyPI ``mirt``
    (``CATEngine.run_batch_simulation``, its lock-step path) and catsim (``Simulator``; ML only,
    run on a subset because it takes ~17 ms per simulee). Each engine draws its own answers
    from the model, so RMSE/bias/mean SE agree in distribution, not simulee by simulee.
(b) Live next-item latency on a 2,000-item 3PL bank with the CMCS blueprint and randomesque 5:
    one session at a time, ``next_item`` timed over whole tests; heuristic and shadow test.

Run::

    bash benchmarks/make_peers_env.sh
    benchmarks/.peers-venv/bin/python benchmarks/bench_cat.py
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np

from adaptive import ItemBank
from adaptive.cat import CatEngine, ExamDesign, Session, simulate_cat
from adaptive.cat.posthoc import draw_responses
from adaptive.synthetic import synthetic_bank

POOL = Path(__file__).resolve().parents[1] / "tests" / "data" / "cat" / "pool_500_3pl.csv"


def _metrics(theta_hat, se, theta):
    err = theta_hat - theta
    return float(np.sqrt(np.mean(err**2))), float(np.mean(err)), float(np.mean(se))


def run_adaptive(bank, theta, reps):
    design = ExamDesign(min_length=30, max_length=30, estimator={"grid": (-4, 4, 33)}, content={"method": "none"})
    engine = CatEngine(design, bank)
    times = []
    for r in range(reps):
        t0 = time.perf_counter()
        res = simulate_cat(design, bank, thetas=theta, seed=r, engine=engine)
        times.append(time.perf_counter() - t0)
    return times, _metrics(res.theta, res.se, theta)


def run_mirt(bank, theta, reps):
    from mirt.cat import CATEngine
    from mirt.models.dichotomous import ThreeParameterLogistic

    arr = bank.compile()
    model = ThreeParameterLogistic(n_items=arr.n_items)
    model.set_parameters(discrimination=arr.a, difficulty=arr.thresholds[:, 0], guessing=arr.c)
    model._is_fitted = True
    times = []
    for r in range(reps):
        eng = CATEngine(model, item_selection="MFI", stopping_rule="SE", scoring_method="EAP", initial_theta=0.0,
                        se_threshold=1e-9, max_items=30, min_items=30, n_quadpts=33, theta_bounds=(-4.0, 4.0), seed=r)
        t0 = time.perf_counter()
        out = eng.run_batch_simulation(theta)
        times.append(time.perf_counter() - t0)
    th = np.array([o.theta for o in out], dtype=float).ravel()
    se = np.array([o.standard_error for o in out], dtype=float).ravel()
    return times, _metrics(th, se, theta)


def run_catsim(bank, theta, reps):
    from catsim.estimation.numerical import NumericalSearchEstimator
    from catsim.initialization.initialization import FixedPointInitializer
    from catsim.selection.selection import MaxInfoSelector
    from catsim.simulation import Simulator
    from catsim.stopping.stopping import TestLengthStopper

    arr = bank.compile()
    items = np.column_stack([arr.a, arr.thresholds[:, 0], arr.c, np.ones(arr.n_items)])
    times = []
    for r in range(reps):
        sim = Simulator(items, theta, FixedPointInitializer(0.0), MaxInfoSelector(), NumericalSearchEstimator(),
                        TestLengthStopper(max_items=30), seed=r)
        t0 = time.perf_counter()
        sim.simulate()
        times.append(time.perf_counter() - t0)
    th = np.array(sim.latest_estimations, dtype=float)
    return times, _metrics(th, np.full(th.size, np.nan), theta)


def latency(method: str, n_sessions: int, seed: int = 1):
    bank = synthetic_bank(2000, model="3pl", rng=seed, name="latency-2000")
    design = ExamDesign(min_length=40, max_length=60, scale={"theta_cut": 0.25}, exposure={"randomesque": 5},
                        content={"method": method}, stopping={"classification": {}})
    engine = CatEngine(design, bank)
    rng = np.random.default_rng(seed)
    lat = []
    for k in range(n_sessions):
        s = Session.start(design, bank, seed=k, engine=engine)
        true = rng.normal()
        while True:
            t0 = time.perf_counter()
            item = s.next_item()
            lat.append(time.perf_counter() - t0)
            if item is None:
                break
            ans = draw_responses(engine, np.array([s._key]), s._state.n_given, np.array([bank.index[item]]),
                                 np.array([true]))[0]
            s.answer(item, int(ans), seconds=30)
    lat = np.array(lat) * 1e3
    return float(np.median(lat)), float(np.percentile(lat, 99)), lat.size


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--simulees", type=int, default=10_000)
    ap.add_argument("--catsim-simulees", type=int, default=300)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--latency-sessions", type=int, default=40)
    ap.add_argument("--shadow-sessions", type=int, default=5)
    args = ap.parse_args()
    bank = ItemBank.from_csv(POOL)
    theta = np.random.default_rng(7).standard_normal(args.simulees)
    print(f"(a) catR design, {args.simulees:,} simulees (catsim: {args.catsim_simulees}), best of {args.reps}; "
          f"numpy {np.__version__}, Python {platform.python_version()}")
    rows = []
    for name, fn, th in [("adaptive", run_adaptive, theta), ("mirt (PyPI) lock-step", run_mirt, theta),
                         ("catsim (ML)", run_catsim, theta[: args.catsim_simulees])]:
        try:
            times, (rmse, bias, mse) = fn(bank, th, args.reps if name != "catsim (ML)" else 1)
        except ImportError as err:
            print(f"  {name}: not installed ({err})")
            continue
        rows.append((name, th.size, min(times), max(times), rmse, bias, mse))
    ours = rows[0][2] / rows[0][1]
    print("\n| engine | simulees | best s | first/worst s | ms per simulee | ratio to ours | RMSE | bias | mean SE |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, n, best, worst, rmse, bias, mse in rows:
        per = best / n
        print(f"| {name} | {n:,} | {best:.3f} | {worst:.3f} | {per * 1e3:.4f} | {per / ours:.1f}x | {rmse:.3f} | "
              f"{bias:+.3f} | {mse:.3f} |")
    print("\n(b) live next-item latency, 2,000-item 3PL bank, CMCS blueprint, randomesque 5, 40-60 items")
    print("\n| content method | sessions | next_item calls | median ms | p99 ms | target p99 |")
    print("|---|---:|---:|---:|---:|---|")
    for method, n, target in [("heuristic", args.latency_sessions, "< 1 ms"),
                              ("shadow", args.shadow_sessions, "< 50 ms")]:
        med, p99, calls = latency(method, n)
        print(f"| {method} | {n} | {calls} | {med:.3f} | {p99:.3f} | {target} |")


if __name__ == "__main__":
    main()
