"""Calibrate a pool's subscore model: its operational items with each content domain as a correlated factor.

    python calibration/calibrate_subscores.py            # the CMCS pool (about a minute and a half)
    python calibration/calibrate_subscores.py cmrs
    python calibration/calibrate_subscores.py --check    # rebuild in memory, exit 1 if subscores.json differs

The pool's bank.json holds unidimensional 3PL parameters; they select items, score the exam and decide pass/fail.
The subscore model gives each content domain its own ability, so the candidate's report can show a subscore per
domain with its SE and reliability (adaptive.cat.report). It is calibrated here on a simulated multidimensional
field test, seeded:

  1. candidates: θ ~ N(0, R) over the pool's domains, every correlation ``--correlation`` (0.8: content areas
     of one certification correlate strongly, which is why their subscores need each other's information);
  2. responses: every candidate answers every operational item; item j of domain k follows the 3PL with the
     bank's a_j, b_j, c_j on θ_k;
  3. calibration: adaptive.calibrate(X, model="3pl", factors={domain: [item ids]}, priors="3pl"): the
     confirmatory M3PL with the domain correlations estimated (quasi-Monte Carlo EM beyond 3 domains).

The result is written as item_pools/<pool>/subscores.json (and the package's bundled copy), parameters rounded to
4 decimals; ItemBank.load(pool directory) attaches it to the bank. With real data, replace steps 1-2 by the
exam's own responses (a wide table, NaN where an item was not given) and keep step 3.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

import adaptive
from adaptive import ItemBank
from adaptive.bank.multidim import MultidimBank

ROOT = Path(__file__).resolve().parents[1]
SEED = 20261202
DECIMALS = 4


def build(pool: str, n: int, correlation: float, seed: int = SEED):
    """``(subscore bank, fit, truth)`` for one pool."""
    bank = ItemBank.from_json(ROOT / "item_pools" / pool / "bank.json")
    items = [it for it in bank.items if it.status == "operational"]
    domains = list(dict.fromkeys(it.domain for it in items))
    k = len(domains)
    cov = np.full((k, k), correlation)
    np.fill_diagonal(cov, 1.0)
    rng = np.random.default_rng(seed)
    theta = rng.multivariate_normal(np.zeros(k), cov, n)
    a, b, c = (np.array([getattr(it, p) for it in items]) for p in "abc")
    dom = np.array([domains.index(it.domain) for it in items])
    p = c + (1 - c) / (1 + np.exp(-a * (theta[:, dom] - b)))
    x = (rng.random(p.shape) < p).astype(float)
    ids = [it.id for it in items]
    fit = adaptive.calibrate(x, model="3pl", item_ids=ids, priors="3pl",
                             factors={d: [i for i, j in zip(ids, dom) if j == q] for q, d in enumerate(domains)})
    rows = [{key: (round(float(v), DECIMALS) if isinstance(v, (float, np.floating)) else v) for key, v in r.items()}
            for r in fit.bank.rows()]
    sub = MultidimBank.from_rows(rows, fit.factor_names, np.round(fit.latent_cov, DECIMALS))
    return sub, fit, (a, b, c, dom, cov)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("pools", nargs="*", default=["cmcs"], help="pools (default: cmcs)")
    p.add_argument("--simulees", type=int, default=4500, help="simulated candidates (default: 4500)")
    p.add_argument("--correlation", type=float, default=0.8, help="generating domain correlation (default: 0.8)")
    p.add_argument("--check", action="store_true", help="do not write; exit 1 if subscores.json would change")
    args = p.parse_args(argv)
    stale = []
    for pool in args.pools:
        sub, fit, (a, b, c, dom, cov) = build(pool, args.simulees, args.correlation)
        slopes = sub.slopes[np.arange(dom.size), dom]
        off = ~np.eye(cov.shape[0], dtype=bool)
        print(f"{pool}: {len(sub)} items on {sub.n_dims} domains, {args.simulees} simulees; {fit.integration}; "
              f"{fit.n_iter} EM cycles, log-likelihood {fit.loglik:.2f}")
        print(f"  recovery: slope RMSE {np.sqrt(np.mean((slopes - a) ** 2)):.3f}, intercept RMSE "
              f"{np.sqrt(np.mean((sub.intercepts[:, 0] + a * b) ** 2)):.3f}, correlations "
              f"{sub.latent_cov[off].min():.3f}-{sub.latent_cov[off].max():.3f} (generating {args.correlation:g})")
        text = sub.to_json() + "\n"
        targets = [ROOT / "item_pools" / pool, ROOT / "src" / "adaptive" / "data" / "pools" / pool]
        for t in targets:
            path = t / "subscores.json"
            if args.check:
                if not path.exists() or path.read_text() != text:
                    stale.append(str(path.relative_to(ROOT)))
            else:
                path.write_text(text)
                print(f"  wrote {path.relative_to(ROOT)}")
        with tempfile.TemporaryDirectory() as tmp:  # the pool directory loads with it: every check passes
            (Path(tmp) / "bank.json").write_text((targets[0] / "bank.json").read_text())
            (Path(tmp) / "subscores.json").write_text(text)
            ItemBank.load(tmp)
    if stale:
        print("out of date: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
