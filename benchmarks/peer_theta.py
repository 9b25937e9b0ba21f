"""Runs the PyPI peer theta-irt (JAX MMLE-EM, 1PL-4PL) for the benchmarks, inside its own environment.

theta-irt pins its own numpy and JAX, so it lives in ``benchmarks/.theta-venv`` (``bash
benchmarks/make_theta_env.sh``); ``bench_calibration.py`` and ``bench_eap.py`` start this script with that
environment's interpreter on the same data and read one JSON object from its standard output. Timings are
the best of ``--repeat`` calls after one warm-up call (JAX compiles on the first).

    benchmarks/.theta-venv/bin/python benchmarks/peer_theta.py calibrate 2pl_5000x50 2pl --repeat 3
    benchmarks/.theta-venv/bin/python benchmarks/peer_theta.py eap --persons 100000 --items 100 --seed 1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _best(fn, repeat):
    fn()  # warm-up: JAX traces and compiles on the first call
    best, out = np.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def calibrate(name: str, model: str, repeat: int) -> dict:
    import theta
    from bench_calibration import load

    x = load(name)
    secs, fit = _best(lambda: theta.fit(x, model=model.upper(), n_points=61, tol=1e-4, max_iter=500), repeat)
    return {"seconds": secs, "a": np.asarray(fit.a).tolist(), "b": np.asarray(fit.b).tolist(),
            "c": np.asarray(fit.c).tolist(), "converged": bool(fit.converged), "n_iter": int(fit.n_iter),
            "version": _version()}


def eap(persons: int, items: int, seed: int, repeat: int) -> dict:
    from bench_eap import make_data
    from theta import score

    a, b, _, x = make_data(persons, items, seed)
    ones, zeros = np.ones(items), np.zeros(items)
    secs, (th, _) = _best(lambda: score(x, a, b, zeros, ones, method="EAP", n_points=61), repeat)
    return {"seconds": secs, "theta": np.asarray(th).tolist(), "version": _version()}


def _version() -> str:
    from importlib.metadata import version

    return f"theta-irt {version('theta-irt')}, jax {version('jax')}"


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="what", required=True)
    c = sub.add_parser("calibrate")
    c.add_argument("name")
    c.add_argument("model")
    c.add_argument("--repeat", type=int, default=3)
    e = sub.add_parser("eap")
    e.add_argument("--persons", type=int, default=100_000)
    e.add_argument("--items", type=int, default=100)
    e.add_argument("--seed", type=int, default=20261124)
    e.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    out = (calibrate(args.name, args.model, args.repeat) if args.what == "calibrate"
           else eap(args.persons, args.items, args.seed, args.repeat))
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
