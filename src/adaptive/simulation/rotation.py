"""One pool or k rotating pools: exposure, overlap and repeat-taker overlap by simulation through the engine.

The same simulees (θ ~ N(0, 1)) take the design once with the master pool and once with ``k`` pools from
:func:`adaptive.pools.rotation.split_pool` (simulee ``j`` in pool ``j mod k``). Then each simulee takes the exam a
second time: with one pool on the same pool, with rotation on the next pool. Reported per arrangement:

* maximum exposure rate and the share of items never used, over the master pool;
* overlap rate (Chen, Ankenmann & Spray 2003) between two random candidates, over all of them;
* repeat-taker overlap: the share of a candidate's second test that repeats items of the first (without the
  retake exclusion the live service applies, to show what the pools alone buy);
* blueprint conformance: the share of tests that meet the blueprint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..bank import ItemBank
from ..cat.design import ExamDesign
from ..cat.posthoc import simulate_cat
from .metrics import blueprint_conformance, exposure_rates, overlap_rate

__all__ = ["RotationStudy", "rotation_study"]


@dataclass(frozen=True)
class RotationStudy:
    """Metrics of one pool (``single``) and of ``k`` rotating pools (``rotated``), dicts with ``max_exposure``,
    ``unused``, ``overlap``, ``repeat_overlap``, ``conformance`` and ``mean_se``."""

    k: int
    n: int
    single: dict
    rotated: dict


def _repeat_overlap(first, second) -> float:
    """Mean share of the second test's scored items that were in the first (row by row, as sets)."""
    a = np.where(first.scored & (first.sequence >= 0), first.sequence, -1)
    b = np.where(second.scored & (second.sequence >= 0), second.sequence, -2)
    common = (b[:, :, None] == a[:, None, :]).any(axis=2).sum(axis=1)  # (N, L2, L1): tests are short
    return float(np.mean(common / np.maximum(second.n_items, 1)))


def _metrics(results, first_order, bank: ItemBank, n_items: int) -> dict:
    seq = np.concatenate([r.sequence for r in results])
    scored = np.concatenate([r.scored for r in results])
    lengths = np.concatenate([r.n_items for r in results])
    combined = type(results[0])(**{**results[0].__dict__, "sequence": seq, "scored": scored, "n_items": lengths})
    rates = exposure_rates(combined, n_items)
    conf = np.concatenate([blueprint_conformance(r, b) for r, b in first_order])
    se = np.concatenate([r.se for r in results])
    return {"max_exposure": float(rates.max()), "unused": float(np.mean(rates == 0)),
            "overlap": overlap_rate(combined, n_items), "conformance": float(conf.mean()), "mean_se": float(se.mean())}


def rotation_study(design: ExamDesign, bank: ItemBank, pools: tuple[ItemBank, ...], n: int = 6000,
                   seed: int = 0) -> RotationStudy:
    """Simulate ``n`` candidates on the master pool and on ``pools`` (the banks of a split); see the module
    docstring."""
    k = len(pools)
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=n)
    seeds = rng.integers(0, 2**31, size=(2, n))
    first = simulate_cat(design, bank, thetas=theta, seed=[int(s) for s in seeds[0]])
    again = simulate_cat(design, bank, thetas=theta, seed=[int(s) for s in seeds[1]])
    single = _metrics([first], [(first, bank)], bank, len(bank))
    single["repeat_overlap"] = _repeat_overlap(first, again)
    # rotation: candidate j takes pool j mod k, and the next pool on the retake; ids map pool rows to the master
    index = bank.index
    firsts, seconds, order = [], [], []
    for p, pool in enumerate(pools):  # one batch per pool
        rows = np.flatnonzero(np.arange(n) % k == p)
        to_master = np.array([index[i] for i in pool.ids])
        r1 = simulate_cat(design, pool, thetas=theta[rows], seed=[int(s) for s in seeds[0, rows]])
        nxt = pools[(p + 1) % k]
        r2 = simulate_cat(design, nxt, thetas=theta[rows], seed=[int(s) for s in seeds[1, rows]])
        to_next = np.array([index[i] for i in nxt.ids])
        firsts.append(_remap(r1, to_master))
        seconds.append(_remap(r2, to_next))
        order.append((r1, pool))
    rotated = _metrics(firsts, order, bank, len(bank))
    rotated["repeat_overlap"] = float(np.average([_repeat_overlap(a, b) for a, b in zip(firsts, seconds, strict=True)],
                                                 weights=[len(a.theta) for a in firsts]))
    return RotationStudy(k=k, n=n, single=single, rotated=rotated)


def _remap(result, to_master):
    seq = np.where(result.sequence >= 0, to_master[np.maximum(result.sequence, 0)], -1)
    return type(result)(**{**result.__dict__, "sequence": seq})
