"""The shadow test for multidimensional CAT (Veldkamp & van der Linden 2002; van der Linden 2005, ch. 9).

At every step each session solves the 0-1 program of :func:`adaptive.cat.constraints.shadow_test`: a full test of
``max_items`` items that holds every item given so far, meets every content domain's minimum and maximum and
holds at most one item of each enemy set, and maximizes the sum of the free items' criterion values (the design's
rule evaluated for each item alone at the current θ̂, as the heuristic ranks them). The next item is the best
free item of that test (``randomesque`` picks among its best k), so the test ends meeting the blueprint whatever
the path, which the heuristic's minima-and-maxima eligibility guarantees only while enough items of each domain
remain. A program the solver stops at its time limit gives its best test found so far; one it cannot solve
leaves the step to the heuristic, and the session's ``shadow_fallbacks`` counts it. Sympson-Hetter refusals set
the item aside and the next best free item of the same shadow test is taken.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from .constraints import shadow_test

__all__ = ["enemy_pairs", "shadow_pick"]


def enemy_pairs(groups) -> np.ndarray:
    """``(P, 2)`` item index pairs of the enemy sets."""
    pairs = [p for grp in groups for p in combinations(sorted(int(i) for i in grp), 2)]
    return np.array(pairs, dtype=int).reshape(-1, 2)


def shadow_pick(comp, state, rows, values, free, rng, heuristic) -> np.ndarray:
    """The next item of sessions ``rows`` from their shadow tests (``heuristic``'s pick where none is found).

    ``values`` ``(len(rows), I)``: the criterion of every item; ``free``: the items each session may still take
    (not given, not pretest, not set aside). A criterion that is not finite (the A-rule's singular matrices)
    ranks below every finite one."""
    design = comp.design
    out = np.full(rows.size, -1)
    lo, hi = comp.domain_min, comp.domain_max
    for r, row in enumerate(rows):  # one program per session, as each has its own items and θ̂
        given = ~np.isnan(state.answers[row])
        ok = free[r]
        finite = ok & np.isfinite(values[r])
        floor = values[r, finite].min() - 1.0 if finite.any() else 0.0
        weight = np.where(finite, values[r], np.where(ok, floor, 0.0))
        weight = np.where(ok, weight - floor + 1e-9, 0.0)  # free items > 0; a shift leaves the optimum unchanged
        sol = shadow_test(weight, given, ok | given, comp.domain, lo if lo.size else None, hi if hi.size else None,
                          design.max_items, comp.pairs, time_limit=design.shadow_time_limit)
        if sol.items is None:
            state.shadow_fallbacks[row] += 1
            out[r] = heuristic[r]
            continue
        chosen = sol.items[~given[sol.items]]
        chosen = chosen[np.argsort(-weight[chosen], kind="stable")]
        while chosen.size:
            k = min(design.randomesque, chosen.size)
            j = int(rng.integers(k)) if k > 1 else 0
            item = int(chosen[j])
            if comp.sh[item] >= 1.0 or rng.random() < comp.sh[item]:
                out[r] = item
                break
            if state.blocked is not None:  # Sympson-Hetter: set aside for this test
                state.blocked[row, item] = True
            chosen = np.delete(chosen, j)
    return out
