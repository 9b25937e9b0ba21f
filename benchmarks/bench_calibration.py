"""Calibration benchmark: adaptive vs PyPI ``mirt`` (61 points), theta-irt and girth on the five mirt reference sets.

Run (the peers need numpy < 2.4, so they live in their own environment; theta-irt, with JAX, in another)::

    bash benchmarks/make_peers_env.sh
    bash benchmarks/make_theta_env.sh            # optional: theta-irt, run through benchmarks/peer_theta.py
    benchmarks/.peers-venv/bin/python benchmarks/bench_calibration.py [--repeat 3] [--no-girth]
    benchmarks/.peers-venv/bin/python benchmarks/bench_calibration.py --large   # 100,000 x 300, 90% missing

Data: ``tests/data/calibration/*.csv.gz`` (copied from the shared reference folder: R mirt 1.45.1 fits
with 61 points on [-6, 6], TOL 1e-4). Each engine fits the same matrix in this process, one after the
other; the time is the best wall time of ``--repeat`` runs (girth: one run, it is slow) and covers the
fit only (no standard errors). theta-irt runs in its own interpreter on the same file (best of ``--repeat``
after a warm-up call that compiles its JAX code); it fits 1PL-4PL only, so the graded set has no entry.
Every engine's estimates are then scored by one likelihood evaluator (ours, 61 points, the function whose
value at R mirt's estimates equals R mirt's logLik), so the log-likelihood column compares where each engine
stopped. R mirt's CPU seconds come from
``mirt_runs.jsonl`` (same machine class; R cannot be installed here).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

import adaptive
from adaptive.calibration.em import Problem
from adaptive.irt.mixed import from_irt, internal_log_prob

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "calibration"
SETS = [("2pl_5000x50", "2pl"), ("2pl_20000x100", "2pl"), ("3pl_10000x60", "3pl"),
        ("2pl_20000x200_miss70", "2pl"), ("grm_3000x20", "graded")]


def load(name):
    with gzip.open(DATA / f"{name}.csv.gz", "rt") as fh:
        fh.readline()
        text = fh.read()
    lines = []
    for line in text.splitlines():
        if line.startswith(","):
            line = "nan" + line
        if line.endswith(","):
            line += "nan"
        while ",," in line:
            line = line.replace(",,", ",nan,")
        lines.append(line)
    return np.loadtxt(io.StringIO("\n".join(lines)), delimiter=",")


def r_mirt_runs():
    runs = {}
    for line in (DATA / "mirt_runs.jsonl").read_text().splitlines():
        r = json.loads(line)
        if "logLik" in r:
            runs[r["tag"].removeprefix("calib_")] = r
    return runs


def loglik(x, model, a, thr, c):
    """Marginal log-likelihood of IRT parameters on 61 points (N(0, 1)), by our evaluator."""
    n_items = x.shape[1]
    fam = np.full(n_items, 1 if model == "graded" else 0)
    n_cat = np.full(n_items, thr.shape[1] + 1 if model == "graded" else 2)
    p = max(4 if model != "graded" else n_cat[0], 2)
    phi = from_irt(fam, n_cat, a, thr, c, np.ones(n_items), p)
    pr = Problem(x, fam, n_cat, phi, np.zeros_like(phi, bool), np.zeros(n_items, bool), np.linspace(-6, 6, 61),
                 np.zeros(x.shape[0], int), [[0.0, 1.0]], [[False, False]], {})
    return pr.posterior(internal_log_prob(fam, n_cat, phi, pr.theta), np.array([[0.0, 1.0]]))[1]


def run_adaptive(x, model):
    res = adaptive.calibrate(x, model=model)
    return res.a, res.thresholds[:, : (3 if model == "graded" else 1)], res.c


def run_mirt(x, model):
    import mirt

    name = {"2pl": "2PL", "3pl": "3PL", "graded": "GRM"}[model]
    data = np.where(np.isnan(x), -1, x).astype(int)
    fit = mirt.fit_mirt(data, model=name, n_quadpts=61, tol=1e-4, max_iter=500, compute_standard_errors=False)
    coef = fit.coef() if callable(fit.coef) else fit.coef
    return _mirt_irt(coef, model, x.shape[1])


def _mirt_irt(coef, model, n_items):
    cols = {str(k).lower(): k for k in coef.columns}

    def col(*names):
        for n in names:
            if n in cols:
                return np.asarray(coef[cols[n]], dtype=float)
        raise KeyError(f"none of {names} in mirt's coef columns {list(coef.columns)}")

    a = col("discrimination", "a", "a1")
    if model == "graded":
        thr_cols = sorted([k for k in cols if k.startswith("threshold") or k.startswith("b")], key=str)
        thr = np.column_stack([np.asarray(coef[cols[k]], dtype=float) for k in thr_cols])[:, :3]
        if np.all(np.diff(thr, axis=1) < 0):
            thr = -thr / a[:, None]  # intercepts d_k -> thresholds
        return a, thr, np.zeros(n_items)
    b = col("difficulty", "b")
    c = col("guessing", "c", "g") if model == "3pl" else np.zeros(n_items)
    return a, b[:, None], c


def run_girth(x, model):
    import girth

    data = np.where(np.isnan(x), girth.INVALID_RESPONSE, x).astype(int).T
    opts = {"quadrature_n": 61, "quadrature_bounds": (-6, 6)}
    if model == "2pl":
        r = girth.twopl_mml(data, opts)
        return np.asarray(r["Discrimination"]), np.asarray(r["Difficulty"])[:, None], np.zeros(x.shape[1])
    if model == "3pl":
        r = girth.threepl_mml(data, opts)
        return np.asarray(r["Discrimination"]), np.asarray(r["Difficulty"])[:, None], np.asarray(r["Guessing"])
    r = girth.grm_mml(data, opts)
    return np.asarray(r["Discrimination"]), np.asarray(r["Difficulty"])[:, :3], np.zeros(x.shape[1])


THETA_PYTHON = Path(__file__).resolve().parent / ".theta-venv" / "bin" / "python"


def run_theta(name, model, repeat, python=THETA_PYTHON):
    """theta-irt in its own environment: (best seconds, (a, b[:, None], c))."""
    if model not in ("2pl", "3pl"):
        raise NotImplementedError("theta-irt fits 1PL-4PL only")
    run = subprocess.run([str(python), str(Path(__file__).with_name("peer_theta.py")), "calibrate", name, model,
                          "--repeat", str(repeat)], capture_output=True, text=True, timeout=3600)
    if run.returncode != 0:
        raise RuntimeError(run.stderr.strip().splitlines()[-1] if run.stderr.strip() else "failed")
    out = json.loads(run.stdout)
    return out["seconds"], (np.array(out["a"]), np.array(out["b"])[:, None], np.array(out["c"]))


#: a peer's fit counts as "equal" when its log-likelihood is at most this far below ours (the engines' own stopping
#: rules leave differences of ~0.1 at TOL 1e-4; a peer that stops further below has not reached the maximum)
EQUAL_LOGLIK = 0.5


def at_equal_loglik(line):
    """(our speed-up over the fastest peer whose log-likelihood is within EQUAL_LOGLIK of ours, its name)."""
    ours_s, ours_ll = line["adaptive"]
    cands = {"R mirt": (line["R mirt CPU s"], line["R mirt logLik"])}
    for k, label in (("mirt (PyPI, 61 pts)", "PyPI mirt"), ("theta-irt", "theta-irt"), ("girth", "girth")):
        if k in line:
            cands[label] = line[k]
    ok = {k: t for k, (t, ll) in cands.items()
          if isinstance(ll, float) and np.isfinite(t) and ll >= ours_ll - EQUAL_LOGLIK}
    if not ok:
        return np.nan, "no peer reached our logLik"
    who = min(ok, key=ok.get)
    below = [f"{k} stops {ours_ll - ll:.1f} below" for k, (t, ll) in cands.items()
             if isinstance(ll, float) and ll < ours_ll - EQUAL_LOGLIK]
    return ok[who] / ours_s, who + ("; " + ", ".join(below) if below else "")


def timed(fn, x, model, repeat):
    best, out = np.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn(x, model)
        best = min(best, time.perf_counter() - t)
    return best, out


def large():
    """A seeded CAT-like set far larger than the reference sets: 100,000 persons, 300 2PL items, 90% missing."""
    import resource

    from adaptive.synthetic import simulate_responses, synthetic_bank

    bank = synthetic_bank(300, model="2pl", rng=1)
    x = simulate_responses(bank.compile(), np.random.default_rng(2).standard_normal(100_000), rng=3, missing=0.9)
    arr = bank.compile()
    print("| engine | s | logLik | RMSE a | RMSE b |\n|---|---|---|---|---|")
    for eng, fn in (("adaptive", run_adaptive), ("mirt (PyPI, 61 pts)", run_mirt)):
        t, (a, thr, c) = timed(fn, x, "2pl", 1)
        print(f"| {eng} | {t:.2f} | {loglik(x, '2pl', a, thr, c):.3f} | {np.sqrt(np.mean((a - arr.a) ** 2)):.4f} | "
              f"{np.sqrt(np.mean((thr[:, 0] - arr.thresholds[:, 0]) ** 2)):.4f} |", flush=True)
    print(f"peak RSS of the process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-girth", action="store_true")
    ap.add_argument("--theta-python", default=str(THETA_PYTHON),
                    help="interpreter of the theta-irt environment (default: benchmarks/.theta-venv)")
    ap.add_argument("--large", action="store_true",
                    help="only the large synthetic CAT-like set (100,000 x 300 2PL, 90%% missing), ours vs PyPI mirt")
    args = ap.parse_args()
    if args.large:
        return large()
    runs = r_mirt_runs()
    engines = [("adaptive", run_adaptive, args.repeat), ("mirt (PyPI, 61 pts)", run_mirt, args.repeat)]
    if not args.no_girth:
        engines.append(("girth", run_girth, 1))
    print(f"# {platform.processor() or platform.machine()}, Python {platform.python_version()}, numpy {np.__version__}")
    rows = []
    for name, model in SETS:
        x = load(name)
        r = runs[name]
        line = {"set": name, "R mirt CPU s": r["cpu_s"], "R mirt logLik": r["logLik"]}
        for eng, fn, rep in engines:
            try:
                t, (a, thr, c) = timed(fn, x, model, rep)
                line[eng] = (t, loglik(x, model, a, thr, c))
            except Exception as err:  # a peer that cannot fit a set is reported, not fatal
                line[eng] = (np.nan, f"failed: {type(err).__name__}: {str(err)[:60]}")
        if Path(args.theta_python).exists():
            try:
                t, (a, thr, c) = run_theta(name, model, args.repeat, args.theta_python)
                line["theta-irt"] = (t, loglik(x, model, a, thr, c))
            except NotImplementedError:
                line["theta-irt"] = (np.nan, "n/a (1PL-4PL only)")
            except Exception as err:
                line["theta-irt"] = (np.nan, f"failed: {type(err).__name__}: {str(err)[:60]}")
        rows.append(line)
        ratio, who = at_equal_loglik(line)
        ours = line["adaptive"][0]
        peers = {k: v[0] for k, v in line.items() if k in ("mirt (PyPI, 61 pts)", "theta-irt", "girth")}
        print(f"{name}: adaptive {ours:.3f} s; " + "; ".join(f"{k} {v:.3f} s" for k, v in peers.items())
              + f"; R mirt {r['cpu_s']:.1f} s; {ratio:.1f}x the fastest peer at equal logLik ({who})", flush=True)
    head = ["set", "adaptive s", "PyPI mirt s", "theta-irt s", "girth s", "R mirt CPU s",
            "x faster than the fastest peer at equal logLik",
            "logLik adaptive", "logLik PyPI mirt", "logLik theta-irt", "logLik girth", "logLik R mirt"]
    print("\n| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for line in rows:
        ours = line["adaptive"]
        peer = line["mirt (PyPI, 61 pts)"]
        th = line.get("theta-irt", (np.nan, "not run"))
        gi = line.get("girth", (np.nan, "not run"))
        ratio, who = at_equal_loglik(line)

        def ll(v):
            return f"{v:.3f}" if isinstance(v, float) else str(v)

        def sec(v, digits=3):
            return "-" if not np.isfinite(v) else f"{v:.{digits}f}"

        print(f"| {line['set']} | {ours[0]:.3f} | {sec(peer[0])} | {sec(th[0])} | {sec(gi[0], 2)} | "
              f"{line['R mirt CPU s']:.1f} | {ratio:.1f} ({who}) | {ll(ours[1])} | {ll(peer[1])} | {ll(th[1])} | "
              f"{ll(gi[1])} | {line['R mirt logLik']:.3f} |")


if __name__ == "__main__":
    main()
