"""Rasch CML on 20,000 × 100 complete data (and with two linked forms), with Andersen's test.

Seeded data from the Rasch model (b ~ N(0, 1), θ ~ N(0, 1)). Best wall time of ``--repeat`` fits. PyPI
``raschpy`` 1.4.0, the Rasch package on PyPI, offers no CML (its estimators are pairwise, PAIR/CPAT; its
Andersen test raises NotImplementedError "until CML is available"), so there is no peer column.

    .venv/bin/python benchmarks/bench_cml.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from adaptive.calibration.cml import fit_cml


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    rng = np.random.default_rng(20261202)
    b = rng.normal(size=100)
    theta = rng.normal(size=20_000)
    x = (rng.random((20_000, 100)) < 1 / (1 + np.exp(-(theta[:, None] - b)))).astype(float)
    forms = x.copy()
    forms[:10_000, 60:] = np.nan  # form 1: items 1-60; form 2: items 41-100 (20 shared)
    forms[10_000:, :40] = np.nan
    print("| data | best s | Newton steps | max abs error of b | conditional logLik | Andersen LR (df, p) |")
    print("|---|---:|---:|---:|---:|---|")
    for label, data in (("20,000 × 100 complete", x), ("20,000 × 100, two forms of 60 (20 shared)", forms)):
        best = np.inf
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            fit = fit_cml(data)
            best = min(best, time.perf_counter() - t0)
        t0 = time.perf_counter()
        test = fit.andersen_test()
        t_test = time.perf_counter() - t0
        err = np.abs(fit.difficulty - (b - b.mean())).max()
        print(f"| {label} | {best:.3f} | {fit.n_iter} | {err:.3f} | {fit.loglik:.3f} | {test.statistic:.1f} "
              f"({test.df}, {test.p_value:.3f}); {t_test:.2f} s |")


if __name__ == "__main__":
    main()
