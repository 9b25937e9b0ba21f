"""Security statistics at scale: 100,000 candidates' CAT records, and answer similarity in one window.

The records come from the real engine: the CMCS design on a seeded 2,000-item synthetic 3PL bank with the
CMCS blueprint, honest candidates plus the planted behaviours of ``adaptive.security.planted`` (pre-knowledge,
copiers, rapid guessers, proxies). Each statistic is timed on the same records, once, after the data are
built (a second run changes little: nothing is cached between calls). Answer similarity is timed on one
window of 2,000 candidates at one site (1,999,000 pairs).

No peer computes these on CAT records in Python (R's PerFit/LNIRT/CopyDetect cannot be installed here;
PyPI ``mirt`` has lz but no lz*, l_t or similarity), so the table has no peer column.

Run::

    .venv/bin/python benchmarks/bench_security.py [--candidates 100000] [--window 2000]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from adaptive.bank import ItemBank
from adaptive.cat.design import ExamDesign
from adaptive.resources import pool_path
from adaptive.scoring.long_format import estimate_theta
from adaptive.security import answer_similarity, fit_response_times, person_fit, preknowledge, rapid_guessing, speed_fit
from adaptive.security.person_fit import adaptive_null
from adaptive.security.planted import plant_cheating
from adaptive.security.report import analyse
from adaptive.synthetic import synthetic_bank


def _timed(label, fn, rows):
    t0 = time.perf_counter()
    out = fn()
    rows.append((label, time.perf_counter() - t0))
    print(f"  {label:<52} {rows[-1][1]:7.2f} s", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", type=int, default=100_000)
    ap.add_argument("--window", type=int, default=2_000)
    args = ap.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    blueprint = ItemBank.from_json(pool_path("cmcs") / "bank.json").blueprint
    bank = synthetic_bank(2000, model="3pl", blueprint=blueprint, pretest=0.05, rng=1)
    design = ExamDesign.load(pool_path("cmcs") / "design.json")
    arrays = bank.compile()
    t0 = time.perf_counter()
    study = plant_cheating(design, bank, args.candidates, rng=2026, site_size=200)
    rec = study.records
    print(f"# {args.candidates:,} candidates through the engine in {time.perf_counter() - t0:.1f} s: "
          f"{rec.n_records:,} answers")
    rows: list[tuple[str, float]] = []
    theta = _timed("WLE θ̂ (long format)", lambda: estimate_theta(arrays, rec, "wle").theta, rows)
    _timed("lz* at the WLE", lambda: person_fit(arrays, rec, theta=theta), rows)
    rt = _timed("lognormal time model (MML-EM)", lambda: fit_response_times(rec), rows)
    _timed("l_t", lambda: speed_fit(rt, rec), rows)
    _timed("rapid guessing (normative) + θ̂ without rapid answers",
           lambda: rapid_guessing(arrays, rec, theta=theta), rows)
    _timed("rapid guessing thresholds (mixture)", lambda: rapid_guessing(arrays, rec, method="mixture", theta=theta),
           rows)
    _timed("pre-knowledge (3 ML fits, speed contrast)", lambda: preknowledge(arrays, rec, study.leaked, rt_fit=rt),
           rows)
    _timed("answer similarity, sites of 200 (all windows)", lambda: answer_similarity(arrays, rec, theta=theta), rows)
    _timed("adaptive null for lz* (5,000 simulees)", lambda: adaptive_null(design, bank, 5000, theta=theta), rows)
    total = _timed("analyse(): everything above, with the adaptive null",
                   lambda: analyse(bank, rec, compromised=study.leaked, design=design), rows)
    print(f"# flagged: {int(total.candidates.flagged().sum()):,} of {args.candidates:,}")

    win = plant_cheating(design, bank, args.window, rng=7, site_size=args.window)
    pairs = args.window * (args.window - 1) // 2
    t_win = _timed(f"answer similarity, one window of {args.window:,} ({pairs:,} pairs)",
                   lambda: answer_similarity(arrays, win.records), rows)
    print(f"# window: {t_win.n_pairs:,} pairs compared, {len(t_win):,} screened, {int(t_win.flagged.sum())} flagged")
    print()
    print("| statistic | seconds |")
    print("|---|---:|")
    for label, sec in rows:
        print(f"| {label} | {sec:.2f} |")


if __name__ == "__main__":
    main()
