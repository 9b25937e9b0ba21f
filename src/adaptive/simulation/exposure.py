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
                          seed: int = 0, progress=None) -> SympsonHetterResult:
    """Iterate Sympson–Hetter parameters until no item's exposure rate exceeds ``target + tolerance``.

    Parameters
    ----------
    design, bank : the exam design and its bank (operational items get parameters; others keep 1)
    target : the largest allowed exposure rate r
    simulees, mean, sd : the simulated population of every round (θ ~ N(mean, sd))
    tolerance : slack on r for the stopping rule (Monte Carlo error of a rate is about sqrt(r(1-r)/n))
    seed : the rounds' simulees and answers (the same in every round: common random numbers)

    Returns
    -------
    SympsonHetterResult -- ``.bank`` has ``exposure = K_i`` on every item with ``K_i < 1``.
    """
    if not 0.0 < target < 1.0:
        raise ValueError(f"target exposure rate {target} must lie in (0, 1)")
    if design.max_length / max(1, sum(it.status == "operational" for it in bank.items)) > target:
        raise ValueError(f"a {design.max_length}-item test from {len(bank)} items cannot hold every rate at {target}: "
                         "the rates average at least max_length / n_items; raise the target or add items")
    sh_design = design.model_copy(update={"exposure": design.exposure.model_copy(update={"sympson_hetter": True})})
    spec = SimuleeSpec(n=simulees, mean=mean, sd=sd)
    k = np.ones(len(bank))
    trace = []
    converged = False
    rates = np.zeros(len(bank))
    current = bank
    for rnd in range(max_rounds):
        current = _with_exposure(bank, k)
        cell = run_cell(sh_design, current, spec, seed)
        rates = cell.exposure_counts / simulees
        trace.append(float(rates.max()))
        if progress:
            progress(rnd + 1, float(rates.max()))
        if rates.max() <= target + tolerance:
            converged = True
            break
        selected = rates / k
        k = np.where(selected > target, target / np.maximum(selected, 1e-12), 1.0)
    return SympsonHetterResult(bank=current, design=sh_design, k=k, max_rate_trace=trace, converged=converged,
                               exposure_rates=rates)


def _with_exposure(bank: ItemBank, k: np.ndarray) -> ItemBank:
    items = [it.model_copy(update={"exposure": float(round(v, 6)) if v < 1.0 else None})
             for it, v in zip(bank.items, k)]
    # a new bank (not model_copy): its compiled arrays must be built from the new items
    return ItemBank(**{**{f: getattr(bank, f) for f in ("name", "version", "description", "scaling", "blueprint")},
                       "items": items})
