"""Metrics of simulated adaptive tests, vectorized over simulees.

Every function takes a :class:`~adaptive.cat.engine.CatResult` (or its arrays) and returns
arrays or a frozen result; none loops over simulees or items in Python.

Classification (Rudner 2001 terms): a simulee is *truly* passing when θ ≥ θcut; the test's
decision is compared with that. ``accuracy = P(decision = truth)``, ``false_pass = P(pass and
θ < θcut)``, ``false_fail = P(fail and θ ≥ θcut)`` (shares of all simulees).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..cat.constraints import BlueprintBounds

__all__ = [
    "Classification",
    "blueprint_conformance",
    "classification",
    "domain_counts",
    "exposure_rates",
    "overlap_rate",
    "precision",
]


def precision(true_theta, theta, se) -> dict[str, float]:
    """Recovery of θ: bias, RMSE, correlation, mean SE, root mean squared SE, empirical reliability.

    ``empirical_reliability = var(θ̂) / (var(θ̂) + mean(SE²))`` (as mirt's ``empirical_rxx`` for EAP
    scores); ``rms_se = sqrt(mean(SE²))`` is the SE a long test's RMSE should match.
    """
    t = np.asarray(true_theta, dtype=float)
    e = np.asarray(theta, dtype=float)
    s = np.asarray(se, dtype=float)
    err = e - t
    var_hat = float(np.var(e))
    ms_se = float(np.mean(s**2))
    corr = float(np.corrcoef(t, e)[0, 1]) if t.size > 1 and np.std(t) > 0 and np.std(e) > 0 else float("nan")
    return {"bias": float(err.mean()), "rmse": float(np.sqrt(np.mean(err**2))), "corr": corr,
            "mean_se": float(s.mean()), "rms_se": float(np.sqrt(ms_se)),
            "empirical_reliability": var_hat / (var_hat + ms_se) if var_hat + ms_se > 0 else float("nan")}


def domain_counts(result, item_domain: np.ndarray, n_domains: int) -> np.ndarray:
    """Scored items per blueprint domain for each simulee, ``(N, D)``.

    ``item_domain`` gives each bank item's domain index (-1: outside the blueprint, not counted).
    """
    seq = result.sequence
    keep = result.scored & (seq >= 0)
    dom = np.where(keep, np.asarray(item_domain)[np.where(seq >= 0, seq, 0)], -1)
    rows = np.broadcast_to(np.arange(seq.shape[0])[:, None], seq.shape)
    ok = dom >= 0
    flat = rows[ok] * n_domains + dom[ok]
    return np.bincount(flat, minlength=seq.shape[0] * n_domains).reshape(seq.shape[0], n_domains)


def blueprint_conformance(result, bank, blueprint=None) -> np.ndarray:
    """Whether each test meets the blueprint at its own length, ``(N,)`` booleans.

    A test of ``L`` scored items meets it when every domain holds between
    ``max(min_items, floor(p L))`` and ``min(max_items, ceil(p L))`` items
    (:meth:`adaptive.cat.constraints.BlueprintBounds.bounds`).
    """
    blueprint = blueprint or bank.blueprint
    if blueprint is None:
        raise ValueError(f"bank {bank.name!r} declares no blueprint; pass blueprint=")
    bp = BlueprintBounds.build(blueprint, [it.domain for it in bank.items])
    counts = domain_counts(result, bp.item_domain, bp.n_domains)
    lo, hi = bp.bounds(result.n_items)
    return np.all((counts >= lo) & (counts <= hi), axis=1)


@dataclass(frozen=True)
class Classification:
    """Decision quality against the true θ (shares of all simulees)."""

    n: int
    pass_rate: float
    true_pass_rate: float
    accuracy: float
    false_pass: float
    false_fail: float
    no_decision: float


def classification(decision, true_theta, theta_cut: float) -> Classification:
    """Pass rate, accuracy, false-pass and false-fail rates of decisions ``"pass"/"fail"/"no decision"``."""
    decision = np.asarray(decision)
    truth = np.asarray(true_theta, dtype=float) >= theta_cut
    passed = decision == "pass"
    failed = decision == "fail"
    return Classification(
        n=int(decision.size), pass_rate=float(passed.mean()), true_pass_rate=float(truth.mean()),
        accuracy=float(np.mean((passed & truth) | (failed & ~truth))),
        false_pass=float(np.mean(passed & ~truth)), false_fail=float(np.mean(failed & truth)),
        no_decision=float(np.mean(~passed & ~failed)))


def exposure_rates(result, n_items: int, scored_only: bool = True) -> np.ndarray:
    """Share of simulees who saw each bank item, ``(I,)``."""
    seq = result.sequence
    keep = seq >= 0
    if scored_only:
        keep &= result.scored
    return np.bincount(seq[keep], minlength=n_items) / max(seq.shape[0], 1)


def overlap_rate(result, n_items: int) -> float:
    """Mean share of items two random simulees have in common (Chen, Ankenmann & Spray 2003):
    ``(N Σ r_i² / L̄ - 1) / (N - 1)`` with exposure rates ``r_i`` and mean length ``L̄``."""
    n = result.sequence.shape[0]
    if n < 2:
        return float("nan")
    r = exposure_rates(result, n_items)
    mean_len = float(np.mean(result.n_items))
    return float((n * np.sum(r**2) / mean_len - 1.0) / (n - 1))
