"""Compile validated items to the struct-of-arrays form the numerics use."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..irt.arrays import ItemArrays
from ..irt.registry import model_spec
from .constants import STATUSES

if TYPE_CHECKING:
    from .schema import Item

__all__ = ["compile_items"]


def compile_items(items: Sequence[Item], scaling: float = 1.0) -> ItemArrays:
    """:class:`~adaptive.irt.arrays.ItemArrays` of ``items`` (slopes times ``scaling``), in their order."""
    n = len(items)
    k_max = max(it.n_cat for it in items)
    thr = np.full((n, max(k_max - 1, 1)), np.nan)
    for k, it in enumerate(items):
        if model_spec(it.model).dichotomous:
            thr[k, 0] = it.b
        else:
            thr[k, : len(it.thresholds or [])] = it.thresholds or []
    domains = tuple(sorted({it.domain for it in items if it.domain is not None}))
    dom_index = {d: k for k, d in enumerate(domains)}
    ids = tuple(it.id for it in items)
    pos = {iid: k for k, iid in enumerate(ids)}
    pairs = set()
    for k, it in enumerate(items):
        for e in it.enemies:
            if e in pos:
                pairs.add((min(k, pos[e]), max(k, pos[e])))
    groups: dict[str, list[int]] = {}
    for k, it in enumerate(items):
        for g in it.enemy_groups:
            groups.setdefault(g, []).append(k)
    for members in groups.values():
        pairs.update((i, j) for x, i in enumerate(members) for j in members[x + 1 :])
    return ItemArrays(
        ids=ids,
        family=np.array([it.family for it in items], dtype=np.int8),
        a=np.array([it.a for it in items]) * scaling,
        thresholds=thr,
        c=np.array([it.c for it in items]),
        d=np.array([it.d for it in items]),
        n_cat=np.array([it.n_cat for it in items]),
        domain=np.array([-1 if it.domain is None else dom_index.get(it.domain, -1) for it in items]),
        domains=domains,
        status=np.array([STATUSES.index(it.status) for it in items], dtype=np.int8),
        exposure=np.array([1.0 if it.exposure is None else it.exposure for it in items]),
        exposure_conditional=_conditional_exposure(items),
        enemy_pairs=np.array(sorted(pairs), dtype=int).reshape(-1, 2),
        scaling=float(scaling),
    )


def _conditional_exposure(items: Sequence[Item]) -> np.ndarray:
    n_strata = max((len(it.exposure_conditional) for it in items if it.exposure_conditional), default=0)
    out = np.ones((len(items), n_strata))
    for k, it in enumerate(items):
        if it.exposure_conditional and len(it.exposure_conditional) == n_strata:
            out[k] = it.exposure_conditional
        elif it.exposure is not None:
            out[k] = it.exposure
    return out
