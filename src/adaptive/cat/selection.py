"""Item-selection criteria, vectorized over a batch of sessions.

Every rule is a small class built once per compiled design
(:class:`~adaptive.cat.context.CatContext`) whose :meth:`SelectionRule.criterion` maps the
batch state to a criterion matrix ``(n, I)`` (larger is better); the engine masks ineligible
items and picks the best (ties to the lower item index), or draws among the best ``k``
(randomesque). Rules take the context and the state, never the engine, and are registered by
name in :data:`~adaptive.cat.registry.SELECTION_RULES`, so an
:class:`~adaptive.cat.design.ExamDesign` can name any registered rule.

=============  ================================================================  ===========================
name           criterion                                                          source
=============  ================================================================  ===========================
mfi            Fisher information at θ̂ (exact; see :mod:`adaptive.cat.mfi`)      Lord (1980)
mfi_cut        Fisher information at θcut                                        Spray & Reckase (1994)
mpwi           :math:`\\sum_q \\pi(\\theta_q) I_i(\\theta_q)`                      van der Linden (1998)
kl             KL summed over the grid points in θ̂ ± z/√n (or, with              Chang & Ying (1996); catR
               ``kl_weighting = "likelihood"``, weighted by the likelihood)
klp            :math:`\\sum_q \\pi(\\theta_q) KL_i(\\hat\\theta \\| \\theta_q)`     Chang & Ying (1996)
mepv           minus the expected posterior variance after the item (answers      van der Linden (1998); catR
               weighted by their predictive or, ``"point"``, θ̂ probabilities)
b_matching     :math:`-|\\bar b_i - \\hat\\theta|`                                Urry (1970)
random         a uniform draw per session, step and item
a_stratified   b-matching within the a-stratum of the current stage, b-blocked    Chang, Qian & Ying (2001)
=============  ================================================================  ===========================

Here :math:`\\pi` is the session's normalized posterior on the grid and
:math:`KL_i(\\theta_0 \\| \\theta) = \\sum_k P_{ik}(\\theta_0)\\log\\frac{P_{ik}(\\theta_0)}{P_{ik}(\\theta)}`;
all the grid sums are matrix products ``posterior (n, Q) @ table (Q, I)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._streams import uniforms
from .registry import SELECTION_RULES

if TYPE_CHECKING:
    from .context import CatContext
    from .state import BatchState

__all__ = ["SelectionRule", "RULES", "a_strata", "MaximumInformation", "MaximumInformationAtCut",
           "PosteriorWeightedInformation", "KullbackLeibler", "PosteriorKullbackLeibler",
           "MinimumExpectedPosteriorVariance", "DifficultyMatching", "RandomSelection", "AStratified"]

#: the registry of selection rules by name (an alias of :data:`~adaptive.cat.registry.SELECTION_RULES`)
RULES = SELECTION_RULES


class SelectionRule:
    """Protocol of a selection rule. Subclasses override :meth:`criterion`.

    ``information_point`` returns the θ at which a maximum-information rule maximizes, so the
    engine can use the exact bound index (:mod:`adaptive.cat.mfi`) instead of the full criterion;
    other rules return None.
    """

    name: str = ""

    def __init__(self, ctx: CatContext):
        self.spec = ctx.design.selection

    def criterion(self, ctx: CatContext, state: BatchState, rows: np.ndarray) -> np.ndarray:
        """Criterion of every item for the sessions ``rows``, ``(n, I)``; larger is better."""
        raise NotImplementedError

    def information_point(self, ctx: CatContext, state: BatchState, rows: np.ndarray) -> np.ndarray | None:
        return None


@SELECTION_RULES.register("mfi")
class MaximumInformation(SelectionRule):
    """Fisher information at θ̂ (Lord 1980)."""

    def criterion(self, ctx, state, rows):
        return ctx.information_at(state.theta[rows])

    def information_point(self, ctx, state, rows):
        return state.theta[rows]


@SELECTION_RULES.register("mfi_cut")
class MaximumInformationAtCut(SelectionRule):
    """Fisher information at θcut (Spray & Reckase 1994)."""

    def criterion(self, ctx, state, rows):
        return np.broadcast_to(ctx.information_at(np.array([ctx.cut]))[0], (np.size(rows), ctx.arrays.n_items))

    def information_point(self, ctx, state, rows):
        return np.full(np.size(rows), float(ctx.cut))


@SELECTION_RULES.register("mpwi")
class PosteriorWeightedInformation(SelectionRule):
    """Information weighted by the posterior on the grid (van der Linden 1998)."""

    def criterion(self, ctx, state, rows):
        return ctx.posterior(state.log_post[rows]) @ ctx.tables.information.T


def _kl_weighted(ctx: CatContext, theta: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """:math:`\\sum_q w_q KL_i(\\hat\\theta \\| \\theta_q)` for every item, ``(n, I)``."""
    tm = ctx.arrays.terms(theta)  # (n, I, K) at θ̂
    p0 = tm.prob
    out = np.einsum("nik,nik->ni", p0, tm.log_prob) * weights.sum(axis=1, keepdims=True)
    for k in range(ctx.arrays.max_categories):
        out -= p0[:, :, k] * (weights @ ctx.tables.log_prob[:, :, k].T)
    return out


@SELECTION_RULES.register("klp")
class PosteriorKullbackLeibler(SelectionRule):
    """KL information weighted by the posterior (Chang & Ying 1996)."""

    def criterion(self, ctx, state, rows):
        return _kl_weighted(ctx, state.theta[rows], ctx.posterior(state.log_post[rows]))


@SELECTION_RULES.register("kl")
class KullbackLeibler(SelectionRule):
    """KL information summed over grid points within θ̂ ± z/√n (Chang & Ying 1996), or weighted by the
    likelihood over the whole grid (``kl_weighting = "likelihood"``, catR's ``KL``)."""

    def criterion(self, ctx, state, rows):
        if self.spec.kl_weighting == "likelihood":
            return _kl_weighted(ctx, state.theta[rows], ctx.likelihood_weights(state.log_post[rows]))
        grid = ctx.grid
        n = np.maximum(state.n_scored[rows], 1)
        delta = self.spec.kl_z / np.sqrt(n)
        theta = state.theta[rows]
        w = (np.abs(grid[None, :] - theta[:, None]) <= delta[:, None]).astype(float)
        empty = w.sum(axis=1) == 0
        if empty.any():  # interval narrower than the grid spacing: use the nearest point
            w[empty, np.abs(grid[None, :] - theta[empty, None]).argmin(axis=1)] = 1.0
        return _kl_weighted(ctx, theta, w)


@SELECTION_RULES.register("mepv")
class MinimumExpectedPosteriorVariance(SelectionRule):
    """Minus the posterior variance expected after the item (van der Linden 1998).

    With posterior weights :math:`\\pi_q`, an answer ``k`` leaves the posterior :math:`\\pi_q P_k(\\theta_q)/p_k`
    with :math:`p_k = \\sum_q \\pi_q P_k(\\theta_q)` and variance :math:`V_k`; the criterion is
    :math:`-\\sum_k w_k V_k` with :math:`w_k = p_k` (``predictive``) or :math:`w_k = P_k(\\hat\\theta)`
    (``point``, catR's ``EPV``).
    """

    def criterion(self, ctx, state, rows):
        post = ctx.posterior(state.log_post[rows])
        t = ctx.grid[None, :] - state.theta[rows][:, None]  # centred: less cancellation
        epv = np.zeros((post.shape[0], ctx.arrays.n_items))
        at_theta = ctx.arrays.prob(state.theta[rows]) if self.spec.mepv_weighting == "point" else None
        for k in range(ctx.arrays.max_categories):
            pk = np.exp(ctx.tables.log_prob[:, :, k]).T  # (Q, I)
            pred = post @ pk
            m1 = (post * t) @ pk
            m2 = (post * t * t) @ pk
            safe = np.where(pred > 0, pred, 1.0)
            with np.errstate(divide="ignore", invalid="ignore"):
                spread = np.where(pred > 0, m2 - m1 * m1 / safe, 0.0)  # p_k V_k
            epv += spread if at_theta is None else at_theta[:, :, k] * spread / safe
        return -epv


@SELECTION_RULES.register("b_matching")
class DifficultyMatching(SelectionRule):
    """Minus the distance between the item's difficulty and θ̂ (Urry 1970)."""

    def criterion(self, ctx, state, rows):
        return -np.abs(ctx.difficulty[None, :] - state.theta[rows, None])


@SELECTION_RULES.register("random")
class RandomSelection(SelectionRule):
    """A uniform draw per session, step and item."""

    def criterion(self, ctx, state, rows):
        return uniforms(state.keys[rows], state.n_given[rows], "random_rule", width=ctx.arrays.n_items)


def a_strata(a: np.ndarray, b: np.ndarray, n_strata: int) -> np.ndarray:
    """Stratum of each item by a-stratification with b-blocking (Chang, Qian & Ying 2001).

    Items are sorted by b into consecutive blocks of ``n_strata`` items; within a block,
    the item with the k-th smallest a goes to stratum k. Every stratum thus spans the
    whole b range, and stratum 0 holds the least discriminating items.
    """
    order = np.argsort(b, kind="stable")
    strata = np.empty(a.size, dtype=np.int64)
    for start in range(0, a.size, n_strata):  # one pass per block of n_strata items, at bank compile time
        block = order[start : start + n_strata]
        ranks = np.argsort(np.argsort(a[block], kind="stable"), kind="stable")
        strata[block] = ranks * n_strata // max(block.size, 1) if block.size < n_strata else ranks
    return strata


@SELECTION_RULES.register("a_stratified")
class AStratified(SelectionRule):
    """b-matching within the a-stratum of the current stage, b-blocked (Chang, Qian & Ying 2001)."""

    def __init__(self, ctx):
        super().__init__(ctx)
        self.strata = a_strata(ctx.arrays.a, ctx.difficulty, self.spec.strata)

    def criterion(self, ctx, state, rows):
        s_count = self.spec.strata
        stage = np.minimum(state.n_scored[rows] * s_count // ctx.design.max_length, s_count - 1)
        gap = np.abs(self.strata[None, :] - stage[:, None])
        # within the stage's stratum: b-matching; another stratum only when this one has nothing eligible
        return -np.abs(ctx.difficulty[None, :] - state.theta[rows, None]) - 1.0e6 * gap
