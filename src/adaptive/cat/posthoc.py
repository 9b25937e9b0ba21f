"""Simulation and post-hoc runs of an adaptive design through the batch engine."""

from __future__ import annotations

import numpy as np

from ..bank import ItemBank
from ..exceptions import DesignError, ResponseValidationError
from ..irt import dichotomous
from ..irt.registry import Family
from ..scoring.responses import prepare_responses
from ._streams import batch_keys, uniforms
from .design import ExamDesign
from .engine import CatEngine, CatResult

__all__ = ["simulate_cat", "draw_responses"]


def draw_responses(engine: CatEngine, keys, steps, items, true_theta, arrays=None) -> np.ndarray:
    """Answers of simulees with abilities ``true_theta`` to ``items``, from their own streams.

    The category is the number of cumulative probabilities a uniform draw exceeds
    (inverse-CDF sampling), so one draw per answer serves every model. ``arrays``: the
    compiled "true" bank answers are drawn from (default: the engine's scoring bank).
    """
    arr = engine.arrays if arrays is None else arrays
    items = np.asarray(items, dtype=np.int64)
    theta = np.asarray(true_theta, dtype=float)
    if np.all(arr.family[items] == Family.DICHOTOMOUS):
        # elementwise: parameters shaped (n, 1) pair simulee n with its own item
        p1 = dichotomous.prob(theta, arr.a[items, None], arr.thresholds[items, 0, None],
                              arr.c[items, None], arr.d[items, None])[:, 0, 1]
        cum = (1.0 - p1)[:, None]
    else:
        cum = np.ones((items.size, arr.max_categories - 1))
        for item in np.unique(items):  # polytomous: one vectorized evaluation per distinct item
            rows = np.flatnonzero(items == item)
            p = arr.subset([item]).prob(theta[rows])[:, 0, :]
            cum[rows, : p.shape[1] - 1] = np.cumsum(p, axis=1)[:, :-1]
    u = uniforms(keys, steps, "response")
    return (u[:, None] >= cum).sum(axis=1).astype(float)


def simulate_cat(design: ExamDesign, bank: ItemBank, thetas=None, responses=None, seed=0, *,
                 item_seconds=None, engine: CatEngine | None = None, keys=None, true_bank: ItemBank | None = None,
                 exclude=None) -> CatResult:
    """Run N simulees through the batch engine.

    Parameters
    ----------
    design, bank : the exam design and the item bank
    thetas : array ``(N,)`` -- true abilities; answers are drawn from the model
    responses : array ``(N, I)`` -- answers to every item in bank order (post-hoc mode: each
        answer is read from the matrix; NaN cells make that item unavailable to that simulee)
    seed : int, or a sequence of N ints (one per simulee; simulee ``k`` of ``seed=s`` equals a
        live :class:`~adaptive.cat.session.Session` started with ``batch_keys(s, N)[k]``; with a
        sequence, simulee ``k`` equals ``Session.start(..., seed=seed[k])``)
    item_seconds : float or array ``(N, I)`` -- time per item for the time limit (default:
        the design's ``stopping.seconds_per_item``)
    keys : uint64 array ``(N,)`` -- the simulees' session keys, instead of ``seed`` (a study hands
        each chunk its slice of one key array, so results do not depend on the chunking)
    true_bank : the bank answers are drawn from (same item ids, in the same order); default the
        scoring bank. Differences between the two show the effect of item-parameter error.
    exclude : items the simulees may not be given (a retake): a list of ids for all, a list of N lists, or
        an ``(N, I)`` bool array. A mask in the engine, as a live ``Session.start(..., exclude=ids)``;
        refused with the reason when the items left to some simulee cannot meet the blueprint.

    Returns
    -------
    CatResult -- per simulee final θ̂, SE, item sequence (0-based bank indices), decision, rule.
    """
    engine = engine or CatEngine(design, bank)
    blocked = None
    if responses is not None:
        resp = prepare_responses(engine.arrays, responses)  # names the row and item of each bad answer
        x = np.where(resp.mask, resp.values, np.nan)
        if thetas is not None and len(thetas) != x.shape[0]:
            raise ResponseValidationError("thetas and responses give different numbers of simulees")
        obs = resp.mask
        blocked = ~obs
        n = x.shape[0]
    elif thetas is not None:
        thetas = np.asarray(thetas, dtype=float).ravel()
        n = thetas.size
    else:
        raise ValueError("give thetas (answers drawn from the model) or responses (post-hoc)")
    keys = batch_keys(seed, n) if keys is None else np.asarray(keys, dtype=np.uint64).ravel()
    if keys.size != n:
        raise ValueError(f"{keys.size} keys given for {n} simulees")
    true_arrays = None
    if true_bank is not None:
        if true_bank.ids != bank.ids:
            raise ValueError("true_bank must hold the scoring bank's item ids in the same order")
        true_arrays = true_bank.compile()
    if exclude is not None:
        excluded = engine.ctx.exclusion_mask(exclude, n)
        _check_enough_left(engine.ctx, excluded)
        blocked = excluded if blocked is None else blocked | excluded
    state = engine.start(keys, blocked=blocked)
    secs = None if item_seconds is None else np.asarray(item_seconds, dtype=float)
    while state.active.any():
        items = engine.select(state)
        rows = np.flatnonzero(items >= 0)
        if rows.size == 0:
            break
        it = items[rows]
        if responses is not None:
            ans = x[rows, it]
        else:
            ans = draw_responses(engine, keys[rows], state.n_given[rows], it, thetas[rows], true_arrays)
        sec = None if secs is None else (secs[rows, it] if secs.ndim == 2 else secs)
        engine.record(state, rows, it, ans, sec)
    return engine.result(state)


def _check_enough_left(ctx, excluded: np.ndarray) -> None:
    """Refuse simulees whose remaining operational items cannot fill the test or a blueprint domain's minimum
    (counts, vectorized over simulees; enemy constraints are checked only for live sessions)."""
    d = ctx.design
    n_left, per_domain = ctx.items_left(excluded)
    short = np.flatnonzero(n_left < d.max_length)
    why = f"fewer than max_length {d.max_length} operational items remain"
    if short.size == 0 and per_domain is not None:
        lo, _ = ctx.blueprint.bounds(d.max_length)
        short = np.flatnonzero((per_domain < lo[None, :]).any(axis=1))
        why = "a blueprint domain keeps fewer items than its minimum"
    if short.size:
        raise DesignError(f"exclude: for {short.size} simulee(s) (first: row {int(short[0])}) {why} once their "
                          "excluded items are taken out; exclude fewer items or add items to the bank")
