"""Sympson–Hetter exposure-control parameters, derived by iterative simulation.

Sympson & Hetter (1985); the procedure as in van der Linden (2003) and Chen & Lei (2005):
an item selected for a session is administered with probability ``K_i`` (its bank ``exposure``
parameter), so its administration rate is ``P(A_i) = P(S_i) K_i``. Starting from ``K_i = 1``,
each round simulates ``n`` simulees with the current ``K``, estimates the selection rates
``P(S_i) = P(A_i) / K_i``, and sets

    K_i = 1                 if P(S_i) <= r
    K_i = r / P(S_i)        otherwise,

until the largest administration rate is at most ``r + tolerance``. The simulees of every round
come from one seed, so the derivation is reproducible. The result is written back into the bank
(``Item.exposure``) and the design switches ``exposure.sympson_hetter`` on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..bank import ItemBank
from ..cat.design import ExamDesign
from ..cat.posthoc import simulate_cat
from .study import SimuleeSpec, run_cell

__all__ = ["SympsonHetterResult", "derive_sympson_hetter"]


@dataclass(frozen=True)
class SympsonHetterResult:
    """Derived parameters, the bank carrying them, and the trace of the iterations."""

    bank: ItemBank
    design: ExamDesign
    k: np.ndarray
    max_rate_trace: list[float]
    converged: bool
    exposure_rates: np.ndarray


def derive_sympson_hetter(design: ExamDesign, bank: ItemBank, target: float = 0.25, *, simulees: int = 2000,
                          mean: float = 0.0, sd: float = 1.0, tolerance: float = 0.01, max_rounds: int = 30,
                          seed: int = 0, strata: list[float] | None = None, points_per_stratum: int = 3,
                          progress=None) -> SympsonHetterResult:
    """Iterate Sympson–Hetter parameters until no item's exposure rate exceeds ``target + tolerance``.

    Parameters
    ----------
    design, bank : the exam design and its bank (operational items get parameters; others keep 1)
    target : the largest allowed exposure rate r
    simulees, mean, sd : the simulated population of every round (θ ~ N(mean, sd))
    tolerance : slack on r for the stopping rule (Monte Carlo error of a rate is about sqrt(r(1-r)/n))
    seed : the rounds' simulees and answers (the same in every round: common random numbers)
    strata : θ cut points for **conditional** Sympson–Hetter (Stocking & Lewis 1998). Each round
        then runs ``simulees`` simulees in every stratum, at ``points_per_stratum`` fixed θ values
        spread over it (the outer strata reach two logits beyond the outer cuts), and K is adjusted
        per item and stratum until every stratum's rates hold: P(A_i | stratum) <= r. During a test
        the K of the stratum of the current θ̂ applies.

    Returns
    -------
    SympsonHetterResult -- ``.bank`` has ``exposure = K_i`` on every item with ``K_i < 1`` (or
    ``exposure_conditional = [K_i1, ..., K_iS]`` when conditional); ``.k`` is ``(I,)`` or ``(I, S)``;
    ``.exposure_rates`` is ``(I,)`` or ``(S, I)``.
    """
    if not 0.0 < target < 1.0:
        raise ValueError(f"target exposure rate {target} must lie in (0, 1)")
    if design.max_length / max(1, sum(it.status == "operational" for it in bank.items)) > target:
        raise ValueError(f"a {design.max_length}-item test from {len(bank)} items cannot hold every rate at {target}: "
                         "the rates average at least max_length / n_items; raise the target or add items")
    strata = sorted(float(x) for x in (strata or []))
    sh_design = design.model_copy(update={"exposure": design.exposure.model_copy(
        update={"sympson_hetter": True, "strata": strata})})
    if strata:
        edges = [strata[0] - 2.0, *strata, strata[-1] + 2.0]
        specs = [SimuleeSpec(distribution="grid", n=max(1, simulees // points_per_stratum),
                             grid=[float(x) for x in np.linspace(lo, hi, points_per_stratum + 2)[1:-1]])
                 for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    else:
        specs = [SimuleeSpec(n=simulees, mean=mean, sd=sd)]
    k = np.ones((len(bank), len(specs)))
    trace = []
    converged = False
    rates = np.zeros((len(specs), len(bank)))
    current = bank
    for rnd in range(max_rounds):
        current = _with_exposure(bank, k, conditional=bool(strata))
        by_stratum = np.zeros((len(specs), len(bank), len(specs)))  # [true stratum, item, θ̂ stratum]
        for j, spec in enumerate(specs):
            if strata:
                by_stratum[j] = _administrations_by_stratum(sh_design, current, spec, seed + j, strata)
                rates[j] = by_stratum[j].sum(axis=1) / (spec.n * len(spec.grid))
            else:
                rates[j] = run_cell(sh_design, current, spec, seed + j).exposure_counts / spec.n
        trace.append(float(rates.max()))
        if progress:
            progress(rnd + 1, float(rates.max()))
        if rates.max() <= target + tolerance:
            converged = True
            break
        if strata:
            # K of θ̂ stratum s shrinks by the worst over-exposure among the true strata whose
            # administrations of the item happened while θ̂ was in s
            factor = np.minimum(1.0, target / np.maximum(rates, 1e-12))  # (true stratum, item)
            used = by_stratum > 0
            k = k * np.where(used, factor[:, :, None], 1.0).min(axis=0)
        else:
            selected = rates.T / k
            k = np.where(selected > target, target / np.maximum(selected, 1e-12), 1.0)
    if strata:
        return SympsonHetterResult(bank=current, design=sh_design, k=k, max_rate_trace=trace, converged=converged,
                                   exposure_rates=rates.copy())
    return SympsonHetterResult(bank=current, design=sh_design, k=k[:, 0], max_rate_trace=trace, converged=converged,
                               exposure_rates=rates[0].copy())


def _administrations_by_stratum(design, bank, spec, seed, strata) -> np.ndarray:
    """Scored administrations ``(item, θ̂ stratum at selection)`` of one stratum's simulees."""
    thetas = np.repeat(np.asarray(spec.grid, dtype=float), spec.n)
    res = simulate_cat(design, bank, thetas=thetas, seed=seed)
    before = np.concatenate([np.full((thetas.size, 1), design.start.theta), res.theta_path[:, :-1]], axis=1)
    given = (res.sequence >= 0) & res.scored
    stratum = np.searchsorted(np.asarray(strata), before[given], side="right")
    out = np.zeros((len(bank), len(strata) + 1))
    np.add.at(out, (res.sequence[given], stratum), 1.0)
    return out


def _with_exposure(bank: ItemBank, k: np.ndarray, conditional: bool = False) -> ItemBank:
    k = np.round(k, 6)
    if conditional:
        items = [it.model_copy(update={"exposure_conditional": [float(v) for v in row] if (row < 1.0).any() else None})
                 for it, row in zip(bank.items, k, strict=True)]
    else:
        items = [it.model_copy(update={"exposure": float(v) if v < 1.0 else None})
                 for it, v in zip(bank.items, k[:, 0], strict=True)]
    # a new bank (not model_copy): its compiled arrays must be built from the new items
    return ItemBank(**{**{f: getattr(bank, f) for f in ("name", "version", "description", "scaling", "blueprint")},
                       "items": items})
