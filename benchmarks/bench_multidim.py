"""Multidimensional benchmark: calibration against R mirt 1.45.1's CPU figures and PyPI ``mirt`` in the same process,
a CMCS-sized bifactor calibration, and multidimensional CAT against mirtCAT and PyPI ``mirt``'s MCAT engine.

Run it in the peers' environment (``bash benchmarks/make_peers_env.sh``), which holds PyPI ``mirt`` 1.2.0 and this
project (editable), so both run in one interpreter on the same data::

    benchmarks/.peers-venv/bin/python benchmarks/bench_multidim.py

Data: tests/data/multidim (copied from the shared mirt reference runs: README cases a, b, e, h). R mirt's CPU
seconds come from their JSON (``mirt_reference.json``): total (EM and Oakes SEs) and the EM part alone
(``Data + Estep + Mstep`` of mirt's time breakdown). Each engine is fitted with mirt's settings (31 / 15 points
per dimension, TOL 1e-4) and the log-likelihood at its stopping point is shown, so speed is compared at equal
accuracy. Parts: ``--part calibration``, ``bifactor`` (20,000 x 120, general + 6 specific factors, time and peak
memory of a child process), ``mcat`` (10,000 simulees, 300-item 2-dimensional bank, D-rule, MAP, 30 items).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import adaptive
from adaptive.bank.multidim import MultidimBank
from adaptive.cat.multidim import MultidimDesign, run_mcat
from adaptive.data_io import read_responses

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "multidim"
REF = json.loads((DATA / "mirt_reference.json").read_text())
SETS = [  # name, model, items per factor, factors, quadrature
    ("m2pl2d_3000x30", "2pl", 15, 2, 31),
    ("m2pl3d_5000x45_miss20", "2pl", 15, 3, 15),
    ("grm2d_2000x20", "graded", 10, 2, 31),
]


def _spec(prefix, per, k):
    return {f"F{q + 1}": [f"{prefix}{j:02d}" for j in range(q * per + 1, (q + 1) * per + 1)] for q in range(k)}


def run_ours(name, model, per, k):
    prefix = "G" if model == "graded" else "I"
    t0 = time.process_time()
    fit = adaptive.calibrate(DATA / f"{name}.csv", model=model, factors=_spec(prefix, per, k))
    t_fit = time.process_time() - t0
    t0 = time.process_time()
    fit.standard_errors()
    t_se = time.process_time() - t0
    return fit, t_fit, t_se


def grid_loglik_at(fit, res, model, k):
    """Our grid log-likelihood (mirt's objective) at PyPI mirt's estimates: its own log-likelihood is computed on
    another quadrature, so the two are compared on one objective."""
    m = res.model
    if model == "graded":
        a = np.asarray(m.discrimination, dtype=float).reshape(-1, k)
        d = -a.sum(axis=1, keepdims=True) * np.asarray(m.thresholds, dtype=float)
    else:
        a, d = np.asarray(m.slopes, dtype=float), np.asarray(m.intercepts, dtype=float).reshape(-1, 1)
    cov = np.asarray(getattr(res, "latent_covariance", None) if getattr(res, "latent_covariance", None) is not None
                     else np.eye(k), dtype=float)
    phi = np.zeros_like(fit.problem.params.phi0)
    phi[:, :k + d.shape[1]] = np.column_stack([a, d])
    stats = fit.problem.estep(fit.problem.params.pack(phi, cov))
    return stats.loglik if stats is not None else float("nan")


def run_pypi_mirt(name, model, per, k, quad):
    try:
        import mirt
    except ImportError:
        return None
    x = read_responses(DATA / f"{name}.csv").values
    lines = [f"F{q + 1} = {q * per + 1}-{(q + 1) * per}" for q in range(k)]
    lines.append("COV = " + "*".join(f"F{q + 1}" for q in range(k)))
    t0 = time.process_time()
    res = mirt.fit_mirt(x, model="GRM" if model == "graded" else "2PL", n_factors=k, spec="\n".join(lines),
                        n_quadpts=quad, tol=1e-4, max_iter=500, compute_standard_errors=False)
    elapsed = time.process_time() - t0
    return res, elapsed


def part_calibration():
    print("| set | R mirt CPU s (EM + SE / EM) | R mirt logLik | adaptive EM s | + Oakes SE s | adaptive logLik | "
          "PyPI mirt s | logLik at PyPI mirt's estimates | speed-up EM vs R | vs PyPI mirt |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, model, per, k, quad in SETS:
        ref = REF[name]
        br = ref["breakdown_s"]
        r_em = br["Data"] + br["Estep"] + br["Mstep"]
        fit, t_fit, t_se = run_ours(name, model, per, k)
        ll = fit.loglik
        peer = run_pypi_mirt(name, model, per, k, quad)
        peer_s = f"{peer[1]:.2f}" if peer else "not installed"
        peer_ll = f"{grid_loglik_at(fit, peer[0], model, k):.3f}" if peer else "-"
        vs_peer = f"{peer[1] / t_fit:.1f}x" if peer else "-"
        print(f"| {name} | {ref['cpu_s']:.1f} / {r_em:.1f} | {ref['logLik']:.3f} | {t_fit:.2f} | {t_se:.2f} | "
              f"{ll:.3f} | {peer_s} | {peer_ll} | {r_em / t_fit:.1f}x (total {ref['cpu_s'] / (t_fit + t_se):.1f}x) | "
              f"{vs_peer} |", flush=True)


_BIFACTOR_CHILD = """
import time, resource, numpy as np, adaptive
rng = np.random.default_rng(20261202)
S, per, N = 6, 20, 20000
I = S * per
a_g, a_s, d = rng.uniform(1.0, 2.0, I), rng.uniform(0.5, 1.5, I), rng.normal(size=I)
spec = np.repeat(np.arange(S), per)
g, s = rng.standard_normal(N), rng.standard_normal((N, S))
x = (rng.random((N, I)) < 1 / (1 + np.exp(-(g[:, None] * a_g + s[:, spec] * a_s + d)))).astype(float)
x[rng.random(x.shape) < 0.1] = np.nan
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0, c0 = time.perf_counter(), time.process_time()
fit = adaptive.calibrate(x, model="2pl", bifactor=[f"D{q + 1}" for q in spec])
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
rows = np.arange(I)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rmse_g = np.sqrt(np.mean((fit.slopes[:, 0] - a_g) ** 2))
rmse_s = np.sqrt(np.mean((fit.slopes[rows, 1 + spec] - a_s) ** 2))
print(f"{wall:.1f} {cpu:.1f} {fit.n_iter} {fit.loglik:.2f} {peak / 1024:.0f} {base / 1024:.0f} "
      f"{rmse_g:.3f} {rmse_s:.3f}")
"""


def part_bifactor():
    out = subprocess.run([sys.executable, "-c", _BIFACTOR_CHILD], capture_output=True, text=True, check=True)
    wall, cpu, n_iter, ll, peak, base, rmse_g, rmse_s = out.stdout.split()
    print(f"bifactor 20,000 x 120 (10% missing), general + 6 specific factors, 21 x 21 nodes per specific: "
          f"{wall} s wall, {cpu} s CPU, {n_iter} EM cycles, logLik {ll}; peak RSS {peak} MB (data and imports "
          f"{base} MB); RMSE of the general slopes {rmse_g}, specific slopes {rmse_s}", flush=True)


def part_mcat(n_simulees, n_peer):
    bank = MultidimBank.read_csv(DATA / "cat2d_bank_300.csv", latent_cov=[[1, 0.5], [0.5, 1]])
    rng = np.random.default_rng(20261202)
    theta = rng.multivariate_normal([0, 0], bank.latent_cov, size=n_simulees)
    a, d = bank.phi[:, :2], bank.phi[:, 2]
    answers = (rng.random((n_simulees, len(bank))) < 1 / (1 + np.exp(-(theta @ a.T + d)))).astype(float)
    design = MultidimDesign(rule="d_rule", min_items=30, max_items=30)
    t0 = time.process_time()
    state = run_mcat(bank, design, answers)
    ours = (time.process_time() - t0) / n_simulees * 1000
    rmse = np.sqrt(np.mean((state.theta - theta) ** 2, axis=0))
    mirtcat = REF["mirtCAT_Drule_MAP_200"]["timing"]["cpu_ms_per_simulee_mean"]
    print(f"MCAT, {n_simulees:,} simulees, 300-item 2-d bank, D-rule, MAP, 30 items: adaptive {ours:.2f} ms CPU per "
          f"simulee (RMSE {rmse[0]:.3f} / {rmse[1]:.3f}); mirtCAT {mirtcat:.0f} ms (R, its own 200 simulees, "
          f"RMSE 0.305 / 0.287) -> {mirtcat / ours:.0f}x", flush=True)
    try:
        from mirt.cat import MCATEngine
        from mirt.cat.mcat_stopping import MaxItemsMCATStop
        from mirt.models.multidimensional import MultidimensionalModel
    except ImportError:
        print("PyPI mirt: not installed")
        return
    model = MultidimensionalModel(len(bank), 2, model_type="confirmatory", loading_pattern=(a != 0).astype(float))
    model.set_parameters(slopes=a, intercepts=d)
    model._is_fitted = True  # the bank's parameters are given, not fitted: the engine refuses an "unfitted" model
    est = np.empty((n_peer, 2))
    t0 = time.process_time()
    for n in range(n_peer):
        eng = MCATEngine(model, item_selection="D-optimality", stopping_rule=MaxItemsMCATStop(30), scoring_method="MAP",
                         initial_covariance=bank.latent_cov, max_items=30, min_items=30, seed=n)
        st = eng.get_current_state()
        while not st.is_complete:
            st = eng.administer_item(int(answers[n, st.next_item]))
        est[n] = eng.get_result().theta
    peer = (time.process_time() - t0) / n_peer * 1000
    rmse_p = np.sqrt(np.mean((est - theta[:n_peer]) ** 2, axis=0))
    print(f"PyPI mirt MCATEngine (D-optimality, MAP, 30 items), first {n_peer} simulees: {peer:.1f} ms CPU per "
          f"simulee (RMSE {rmse_p[0]:.3f} / {rmse_p[1]:.3f}) -> adaptive is {peer / ours:.0f}x faster", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("all", "calibration", "bifactor", "mcat"), default="all",
                    help="which part to run (default: all)")
    ap.add_argument("--simulees", type=int, default=10_000, help="MCAT simulees (default: 10000)")
    ap.add_argument("--peer-simulees", type=int, default=200,
                    help="simulees run through PyPI mirt's MCAT engine, one session at a time (default: 200)")
    args = ap.parse_args(argv)
    print(f"# {time.strftime('%Y-%m-%d')}, adaptive {adaptive.__version__}, numpy {np.__version__}, "
          f"{resource.getpagesize()}-byte pages", flush=True)
    if args.part in ("all", "calibration"):
        part_calibration()
    if args.part in ("all", "bifactor"):
        part_bifactor()
    if args.part in ("all", "mcat"):
        part_mcat(args.simulees, args.peer_simulees)


if __name__ == "__main__":
    main()
