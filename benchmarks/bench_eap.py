"""EAP scoring benchmark: adaptive against the PyPI peers on the same data, in one run.

Data: a seeded 2PL bank of 100 items and 100,000 simulees (complete responses;
girth's EAP is 2PL-only, so the common ground is the 2PL). Every engine scores
with 61 quadrature points on [-6, 6] and a N(0, 1) prior:

* adaptive -- ``estimate_ability(bank, X, "eap", grid=(-6, 6, 61))``
* mirt (PyPI ``mirt``) -- ``mirt.scoring.fscores(model, X, method="EAP", n_quadpts=61)``
* girth -- ``girth.ability_eap(X.T, b, a, {"quadrature_n": 61, "quadrature_bounds": (-6, 6)})``
* theta-irt -- ``theta.score(X, a, b, c, d, method="EAP", n_points=61)`` (61 Gauss-Hermite nodes), run in its
  own environment (``bash benchmarks/make_theta_env.sh``) through ``benchmarks/peer_theta.py`` on the same
  seeded data; its time is the best of ``--repeat`` after a warm-up call that compiles its JAX code

Each engine runs ``--repeat`` times; the table shows the best wall time, the
ratio to ours, and the largest |θ difference| from ours (the peers place their
61 points differently, so agreement is to about 1e-3, not bit for bit).

Run (the peers need numpy < 2.4, so they live in their own environment)::

    bash benchmarks/make_peers_env.sh            # once: benchmarks/.peers-venv with the peers and adaptive
    benchmarks/.peers-venv/bin/python benchmarks/bench_eap.py

Without the peers installed, only our figure is printed.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

from adaptive import ItemBank, estimate_ability
from adaptive.bank import compile_items


def make_data(n_persons: int, n_items: int, seed: int):
    rng = np.random.default_rng(seed)
    a = np.exp(rng.normal(np.log(1.1), 0.3, n_items))
    b = rng.normal(0.0, 1.0, n_items)
    theta = rng.standard_normal(n_persons)
    p = 1.0 / (1.0 + np.exp(-a * (theta[:, None] - b)))
    x = (rng.random(p.shape) < p).astype(float)
    return a, b, theta, x


def run_adaptive(a, b, x):
    bank = ItemBank(items=[{"id": f"Q{i:03d}", "model": "2pl", "a": float(ai), "b": float(bi)}
                           for i, (ai, bi) in enumerate(zip(a, b))])
    arrays = compile_items(list(bank.items))  # fresh arrays: no cached grid tables
    return estimate_ability(arrays, x, "eap", grid=(-6.0, 6.0, 61)).theta


def run_mirt(a, b, x):
    from mirt.models.dichotomous import TwoParameterLogistic
    from mirt.scoring import fscores

    model = TwoParameterLogistic(n_items=a.size)
    model.set_parameters(discrimination=a, difficulty=b)
    model._is_fitted = True  # known parameters; mirt marks models fitted the same way after its own fits
    res = fscores(model, x, method="EAP", n_quadpts=61)
    return np.asarray(res.theta, dtype=float).ravel()


def run_girth(a, b, x):
    import girth

    return np.asarray(girth.ability_eap(x.T.astype(int), b, a,
                                        {"quadrature_n": 61, "quadrature_bounds": (-6.0, 6.0)}), dtype=float)


ENGINES = {"adaptive": run_adaptive, "mirt (PyPI)": run_mirt, "girth": run_girth}
THETA_PYTHON = Path(__file__).resolve().parent / ".theta-venv" / "bin" / "python"


def run_theta(args) -> tuple[float, np.ndarray, str]:
    """theta-irt's EAP in its own environment on the same seeded data: (best seconds, θ, version)."""
    run = subprocess.run([str(args.theta_python), str(Path(__file__).with_name("peer_theta.py")), "eap",
                          "--persons", str(args.persons), "--items", str(args.items), "--seed", str(args.seed),
                          "--repeat", str(args.repeat)], capture_output=True, text=True, timeout=3600)
    if run.returncode != 0:
        raise RuntimeError(run.stderr.strip()[-300:])
    out = json.loads(run.stdout)
    return out["seconds"], np.array(out["theta"]), out["version"]


def version_of(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    dist = {"adaptive": "adaptive-cat", "mirt (PyPI)": "mirt", "girth": "girth"}[name]
    try:
        return version(dist)
    except PackageNotFoundError:
        return "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--persons", type=int, default=100_000)
    ap.add_argument("--items", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=20261124)
    ap.add_argument("--theta-python", default=str(THETA_PYTHON),
                    help="interpreter of the theta-irt environment (default: benchmarks/.theta-venv)")
    args = ap.parse_args()

    a, b, theta, x = make_data(args.persons, args.items, args.seed)
    print(f"EAP, 61 points on [-6, 6], N(0,1) prior: {args.persons:,} examinees x {args.items} 2PL items; "
          f"best of {args.repeat}; numpy {np.__version__}, Python {platform.python_version()}, "
          f"{platform.machine()}")
    results = {}
    for name, fn in ENGINES.items():
        try:
            est = fn(a, b, x)  # warm-up (imports, JIT/first-call costs) and the estimates
        except ImportError as err:
            print(f"  {name}: not installed ({err}); run benchmarks/make_peers_env.sh")
            continue
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            est = fn(a, b, x)
            times.append(time.perf_counter() - t0)
        results[name] = (min(times), est)
    versions = {}
    if Path(args.theta_python).exists():
        t, est, versions["theta-irt"] = run_theta(args)
        results["theta-irt"] = (t, est)

    ours_t, ours = results["adaptive"]
    # accuracy yardstick: the same EAP integral on a fine grid (2,001 points on [-8, 8])
    bank = ItemBank(items=[{"id": f"Q{i:03d}", "model": "2pl", "a": float(ai), "b": float(bi)}
                           for i, (ai, bi) in enumerate(zip(a, b))])
    exact = estimate_ability(bank, x, "eap", grid=(-8.0, 8.0, 2001)).theta
    print()
    print("| engine | version | best time (s) | time / ours | max abs θ diff from ours "
          "| max abs error vs 2,001-point EAP | corr(θ̂, θ) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, (t, est) in results.items():
        diff = float(np.max(np.abs(est - ours)))
        err = float(np.max(np.abs(est - exact)))
        corr = float(np.corrcoef(est, theta)[0, 1])
        ver = versions.get(name) or version_of(name)
        print(f"| {name} | {ver} | {t:.3f} | {t / ours_t:.2f}x | {diff:.1e} | {err:.1e} | {corr:.4f} |")
    peers = {k: v[0] for k, v in results.items() if k != "adaptive"}
    if peers:
        best = min(peers, key=peers.get)
        print(f"\nfastest peer: {best}, {peers[best] / ours_t:.1f}x our time (target: >= 2x)")


if __name__ == "__main__":
    main()
