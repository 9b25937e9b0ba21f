"""Where calibration time goes, and the numerical checks behind the E-step's shortcuts.

Run (the project's own environment is enough; no peers needed)::

    .venv/bin/python benchmarks/calibration_internals.py            # all four parts
    .venv/bin/python benchmarks/calibration_internals.py --phases   # part 1 only
    .venv/bin/python benchmarks/calibration_internals.py --cycles   # part 5 only
    .venv/bin/python benchmarks/calibration_internals.py --setup    # part 6 only

An older checkout can be measured with the same script for part 1, e.g. ``git worktree add /tmp/old <commit>``
then ``PYTHONPATH=/tmp/old/src .venv/bin/python benchmarks/calibration_internals.py --phases``.

1. Per reference set: total time of one ``adaptive.calibrate`` (best of 3), number of E-steps and their mean
   time, number of M-steps and their mean time, and the rest (total minus E- and M-steps: input checks, start
   values, the indicator layout, the result and EM's own bookkeeping).
2. The incremental single-precision E-step product: log-likelihood error against the exact product after
   moving every slope and intercept by N(0, scale), next to the error of a plain single-precision product
   (2PL 20,000 x 200 set at its estimates). A change above the limit is what EM's first steps make; the E-step
   then takes the plain single-precision product.
3. Subnormal posterior weights: the count product on the E-step's posterior (weights floored at e^-80 of a
   person's largest) against the same posterior with the floor removed (weights down to subnormal float32).
4. Normalizing the posterior of 5,000 persons x 61 nodes person-major (N, Q) against node-major (Q, N).
5. EM cycles to tol 1e-4: textbook Bock-Aitkin steps, PX-EM steps without SQUAREM, and the default.
6. (``--setup``) The sparse indicator layout's build time (2PL 20,000 x 200, 70% missing); one E-step of that set
   at its start values run right after a BLAS matrix-vector product on the data (OpenBLAS's threads then spin)
   and after the same product by ``einsum``; and the log-likelihood error of three ways to sum the float32
   posterior weights over the nodes (2PL 5,000 x 50 at its estimates).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.special import logsumexp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_calibration import SETS, load  # noqa: E402

import adaptive  # noqa: E402
from adaptive.calibration import em  # noqa: E402
from adaptive.irt.mixed import internal_log_prob  # noqa: E402


def best(fn, repeat):
    out, times = None, []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def _phase_row(name, model):
    x = load(name)
    adaptive.calibrate(x, model=model)  # warm-up
    acc = {"estep": [], "mstep_items": []}
    originals = {m: getattr(em.Problem, m) for m in acc}

    def timed(meth):
        def run(*a, **k):
            t = time.perf_counter()
            out = originals[meth](*a, **k)
            acc[meth].append(time.perf_counter() - t)
            return out
        return run

    total, _ = best(lambda: adaptive.calibrate(x, model=model), 3)
    for m in acc:
        setattr(em.Problem, m, timed(m))
    try:
        adaptive.calibrate(x, model=model)
    finally:
        for m, f in originals.items():
            setattr(em.Problem, m, f)
    e, m = acc["estep"], acc["mstep_items"]
    rest = 1000 * total - 1000 * (np.sum(e) + np.sum(m))  # input checks, start values, layout, result, EM overhead
    print(f"| {name} | {total:.3f} | {len(e)} | {1000 * np.mean(e):.2f} | {len(m)} | {1000 * np.mean(m):.2f} | "
          f"{rest:.0f} |", flush=True)


def phases():
    print("| set | total s | E-steps | ms per E-step | M-steps | ms per M-step | rest ms |\n"
          "|---|---|---|---|---|---|---|")
    for name, model in SETS:
        _phase_row(name, model)


def _sparse_set_at_estimates():
    x = load("2pl_20000x200_miss70")
    res = adaptive.calibrate(x, model="2pl")
    pr, phi, latent = res.fitted.problem, res.fitted.phi, res.fitted.latent
    return pr, phi, latent


def incremental(pr, phi, latent):
    print("\n| change scale | max abs table change | incremental error | plain float32 error |\n|---|---|---|---|")
    lw = pr.log_weights(latent)
    ax = 1 if pr.layout.sparse else 0  # persons x nodes (sparse layout) or nodes x persons (dense)

    def ll(table):
        return float(logsumexp(np.asarray(table, dtype=np.float64), axis=ax).sum())

    rng = np.random.default_rng(0)
    base = pr.layout.grid_table(internal_log_prob(pr.family, pr.n_cat, phi, pr.theta), lw)
    for scale in (1e-4, 1e-3, 1e-2, 5e-2, 0.2):
        # the exact base product (the call after a call at the same parameters)
        pr.layout.last_product, pr.layout.last_table = None, base
        pr.layout.loglik_table(internal_log_prob(pr.family, pr.n_cat, phi, pr.theta), lw, fast=True)
        moved = phi.copy()
        moved[:, :2] += rng.normal(0, scale, (phi.shape[0], 2))
        logp = internal_log_prob(pr.family, pr.n_cat, moved, pr.theta)
        table = pr.layout.grid_table(logp, lw)
        change = float(np.abs(table - base).max())
        exact = pr.layout.loglik_table(logp, lw, fast=False)
        inc = pr.layout.loglik_table(logp, lw, fast=True)
        how = "incremental" if change <= pr.layout.incremental_limit else "single precision: change above the limit"
        plain32 = np.asarray(pr.layout._product(table, single=True), dtype=np.float64)
        print(f"| {scale:g} | {change:.3g} | {ll(inc) - ll(exact):+.2e} ({how}) | {ll(plain32) - ll(exact):+.2e} |")


def subnormal(pr, phi, latent):
    logp = internal_log_prob(pr.family, pr.n_cat, phi, pr.theta)
    post, _ = pr.posterior(logp, latent, fast=True)
    raw = pr.layout.loglik_table(logp, pr.log_weights(latent), fast=False)
    a = raw.T if pr.layout.sparse else raw  # (Q, N)
    e = np.exp((a - a.max(axis=0)).astype(np.float32))  # no floor: weights down to subnormal float32
    unfloored = (e / e.sum(axis=0, dtype=np.float64).astype(np.float32)).T
    unfloored = np.ascontiguousarray(unfloored) if post.flags.c_contiguous else np.asfortranarray(unfloored)
    tiny = np.finfo(np.float32).tiny
    share = float(((unfloored > 0) & (unfloored < tiny)).mean())
    t_floor, _ = best(lambda: pr.layout._count_product(post, np.float32), 10)
    t_sub, _ = best(lambda: pr.layout._count_product(unfloored, np.float32), 10)
    print(f"\ncount product (2PL 20,000 x 200): floored weights {1000 * t_floor:.2f} ms; without the floor "
          f"{1000 * t_sub:.2f} ms ({share:.1%} of the weights subnormal)")


def orientation():
    a = np.random.default_rng(0).normal(-30, 5, (5000, 61))
    a_t = np.ascontiguousarray(a.T)

    def normalize(arr, axis):
        m = arr.max(axis=axis, keepdims=True)
        e = np.subtract(arr, m, out=np.empty(arr.shape, np.float32), casting="same_kind")
        np.maximum(e, -80.0, out=e)
        np.exp(e, out=e)
        s = e.sum(axis=axis, keepdims=True, dtype=np.float64)
        e /= s.astype(e.dtype)
        return float(m.sum() + np.log(s).sum())

    t_rows, ll_rows = best(lambda: normalize(a, 1), 50)
    t_cols, ll_cols = best(lambda: normalize(a_t, 0), 50)
    assert abs(ll_rows - ll_cols) < 1e-6
    print(f"\nposterior normalization, 5,000 persons x 61 nodes: person-major (N, Q) {1000 * t_rows:.2f} ms, "
          f"node-major (Q, N) {1000 * t_cols:.2f} ms")


def cycles():
    """EM cycles to tol 1e-4 and the log-likelihood reached: textbook Bock-Aitkin steps (``accelerate="none"``),
    PX-EM steps without SQUAREM, and the default (PX-EM steps extrapolated by SQUAREM)."""
    print("\n| set | textbook EM cycles | PX-EM cycles | default cycles / E-steps | logLik textbook | logLik default |"
          "\n|---|---|---|---|---|---|")
    for name, model in SETS:
        x = load(name)
        textbook = adaptive.calibrate(x, model=model, accelerate="none")
        with warnings.catch_warnings():  # one cycle only builds the problem: its "did not converge" is expected
            warnings.simplefilter("ignore")
            problem = adaptive.calibrate(x, model=model, max_iter=1).fitted.problem  # the same problem, PX-EM on
        px = em.run_em(problem, em.EMSettings(accelerate="none"))
        default = adaptive.calibrate(x, model=model)
        print(f"| {name} | {textbook.n_iter} | {px.n_iter} | {default.n_iter} / {default.n_estep} | "
              f"{textbook.loglik:.3f} | {default.loglik:.3f} |", flush=True)


def setup():
    from adaptive.calibration.layout import IndicatorLayout

    x = load("2pl_20000x200_miss70")
    n_cat, groups = np.full(x.shape[1], 2), np.zeros(x.shape[0], dtype=int)
    t_build, _ = best(lambda: IndicatorLayout(x, n_cat, groups, 1, 61), 5)
    print(f"\nsparse layout build, 2PL 20,000 x 200 (70% missing): {1000 * t_build:.1f} ms")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pr = adaptive.calibrate(x, model="2pl", max_iter=1).fitted.problem
    x0 = pr.params.pack(pr.params.phi0, pr.params.latent0)
    filled = np.fmax(x, 0.0)
    weights = np.full(x.shape[1], 1.0)

    def estep_after(product):
        times = []
        for _ in range(5):
            product()
            pr.layout.last_table = pr.layout.last_product = None  # a first E-step each time
            t = time.perf_counter()
            pr.estep(x0, np.float32)
            times.append(time.perf_counter() - t)
        return 1000 * min(times)

    after_blas = estep_after(lambda: filled @ weights)
    after_einsum = estep_after(lambda: np.einsum("ni,i->n", filled, weights))
    print(f"E-step at the start values: right after a BLAS matrix-vector product {after_blas:.1f} ms, "
          f"after einsum {after_einsum:.1f} ms")

    from adaptive.calibration.layout import _node_sums  # (not in commits before the grouped sums)

    res = adaptive.calibrate(load("2pl_5000x50"), model="2pl")
    pr5 = res.fitted.problem
    table = pr5.layout.loglik_table(internal_log_prob(pr5.family, pr5.n_cat, res.fitted.phi, pr5.theta),
                                    pr5.log_weights(res.fitted.latent))  # (Q, N), float64
    e = np.exp(table - table.max(axis=0)).astype(np.float32)
    exact = np.log(e.astype(np.float64).sum(axis=0)).sum()
    sums = (("float64", e.sum(axis=0, dtype=np.float64)), ("eight nodes in float32, then float64", _node_sums(e)),
            ("plain float32", e.sum(axis=0).astype(np.float64)))
    for what, s in sums:
        print(f"sum of log node sums, 5,000 persons, {what}: error {np.log(s).sum() - exact:+.1e}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--phases", action="store_true", help="only the per-set time split")
    ap.add_argument("--cycles", action="store_true", help="only the EM cycles of textbook EM, PX-EM and the default")
    ap.add_argument("--setup", action="store_true", help="only part 6: layout build, BLAS threads, node sums")
    args = ap.parse_args()
    if args.cycles:
        cycles()
        return
    if args.setup:
        setup()
        return
    phases()
    if args.phases:
        return
    cycles()
    pr, phi, latent = _sparse_set_at_estimates()
    incremental(pr, phi, latent)
    subnormal(pr, phi, latent)
    orientation()
    setup()


if __name__ == "__main__":
    main()
