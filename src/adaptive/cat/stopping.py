"""Stopping rules, vectorized over sessions, and what a test that runs out of time decides.

After every answer the engine asks each active stopping rule, in precedence order, whether a
session stops. The first rule that fires names the stop (:class:`~adaptive.cat.state.StopRule`)
and may fix the decision; otherwise the decision is taken from the final θ̂ against θcut.

================  =========================================================  ==================
rule              fires when                                                  decision
================  =========================================================  ==================
classification    θ̂ − z·SE > θcut (pass) or θ̂ + z·SE < θcut (fail)          pass / fail
sprt              Λ ≥ log((1−β)/α) (pass) or Λ ≤ log(β/(1−α)) (fail), with    pass / fail
                  Λ = Σ log P(x | θcut+δ) − log P(x | θcut−δ)  (Wald 1947;
                  Reckase 1983)
se_target         SE ≤ target                                                 by θ̂
max_length        ``max_length`` scored items given                           by θ̂
time_limit        the seconds used reach ``time_limit``                       the design's
                                                                              ``on_timeout`` rule
================  =========================================================  ==================

The first three fire only once ``min_length`` items are scored and the test meets the
blueprint at its current length; ``max_length`` and ``time_limit`` always fire.
Run-out-of-time rules are registered by name in :data:`~adaptive.cat.registry.TIMEOUT_RULES`:
``score`` (decide by θ̂ once ``min_length`` is reached, fail before), ``fail``, ``no_decision`` and
``nclex`` (fail below ``min_length``; otherwise pass only if each of the last ``recent_estimates`` interim
estimates was above the cut).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from .registry import TIMEOUT_RULES
from .state import Decision, StopRule

if TYPE_CHECKING:
    from .context import CatContext
    from .state import BatchState

__all__ = ["Verdict", "StoppingRule", "STOPPING_RULES", "register_stopping", "Classification", "SPRT", "SETarget",
           "MaxLength", "TimeLimit", "TimeoutRule", "ScoreOnTimeout", "FailOnTimeout", "NoDecisionOnTimeout",
           "build_stopping_rules", "final_decision"]


@dataclass(frozen=True)
class Verdict:
    """What a stopping rule says about sessions ``rows``.

    ``hit`` ``(n,)`` bool: the rule stops the session. ``decision`` ``(n,)`` :class:`Decision`
    codes, or None to decide by θ̂; ``by_theta`` ``(n,)`` bool (with a ``decision``): sessions whose
    decision is nevertheless taken from θ̂.
    """

    hit: np.ndarray
    decision: np.ndarray | None = None
    by_theta: np.ndarray | None = None


class StoppingRule:
    """Protocol of a stopping rule."""

    code: ClassVar[StopRule] = StopRule.NONE
    #: fires only once min_length is reached and the blueprint is met
    gated: ClassVar[bool] = True

    @classmethod
    def from_design(cls, ctx: CatContext) -> StoppingRule | None:
        """The rule for this design, or None when the design does not use it."""
        raise NotImplementedError

    def observe(self, ctx: CatContext, state: BatchState, rows: np.ndarray, items: np.ndarray,
                responses: np.ndarray) -> None:
        """Take note of scored answers (``responses`` are integer categories)."""

    def check(self, ctx: CatContext, state: BatchState, rows: np.ndarray) -> Verdict:
        raise NotImplementedError


#: stopping rule classes in precedence order (the first that fires names the stop)
STOPPING_RULES: list[type[StoppingRule]] = []


def register_stopping(cls: type[StoppingRule]) -> type[StoppingRule]:
    """Class decorator: append a stopping rule to :data:`STOPPING_RULES` (after the built-in ones)."""
    STOPPING_RULES.append(cls)
    return cls


def _pass_fail(up: np.ndarray, down: np.ndarray) -> Verdict:
    dec = np.where(up, Decision.PASS, Decision.FAIL).astype(np.int8)
    return Verdict(up | down, dec)


@register_stopping
class Classification(StoppingRule):
    """Stop once θ̂ ± z·SE excludes θcut."""

    code = StopRule.CLASSIFICATION

    def __init__(self, z: float, cut: float):
        self.z, self.cut = float(z), float(cut)

    @classmethod
    def from_design(cls, ctx):
        spec = ctx.design.stopping.classification
        return None if spec is None else cls(spec.z, ctx.cut)

    def check(self, ctx, state, rows):
        theta, se = state.theta[rows], state.se[rows]
        return _pass_fail(theta - self.z * se > self.cut, theta + self.z * se < self.cut)


@register_stopping
class SPRT(StoppingRule):
    """Wald's sequential probability ratio test between θcut + δ and θcut − δ.

    Attributes
    ----------
    log_ratio : ``(I, K)`` -- log P_ik(θcut + δ) − log P_ik(θcut − δ)
    upper, lower : Wald's bounds log((1 − β)/α) and log(β/(1 − α))
    """

    code = StopRule.SPRT

    def __init__(self, log_ratio: np.ndarray, alpha: float, beta: float):
        self.log_ratio = log_ratio
        self.upper = float(np.log((1 - beta) / alpha))
        self.lower = float(np.log(beta / (1 - alpha)))

    @classmethod
    def from_design(cls, ctx):
        s = ctx.design.stopping.sprt
        if s is None:
            return None
        lp = ctx.arrays.terms(np.array([ctx.cut + s.delta, ctx.cut - s.delta])).log_prob  # (2, I, K)
        return cls(lp[0] - lp[1], s.alpha, s.beta)

    def observe(self, ctx, state, rows, items, responses):
        state.llr[rows] += self.log_ratio[items, responses]

    def check(self, ctx, state, rows):
        llr = state.llr[rows]
        return _pass_fail(llr >= self.upper, llr <= self.lower)


@register_stopping
class SETarget(StoppingRule):
    """Stop once the SE of θ̂ reaches the target."""

    code = StopRule.SE_TARGET

    def __init__(self, target: float):
        self.target = float(target)

    @classmethod
    def from_design(cls, ctx):
        t = ctx.design.stopping.se_target
        return None if t is None else cls(t)

    def check(self, ctx, state, rows):
        return Verdict(state.se[rows] <= self.target)


@register_stopping
class MaxLength(StoppingRule):
    """Stop at ``max_length`` scored items."""

    code = StopRule.MAX_LENGTH
    gated = False

    def __init__(self, max_length: int):
        self.max_length = int(max_length)

    @classmethod
    def from_design(cls, ctx):
        return cls(ctx.design.max_length)

    def check(self, ctx, state, rows):
        return Verdict(state.n_scored[rows] >= self.max_length)


@register_stopping
class TimeLimit(StoppingRule):
    """Stop once the recorded seconds reach the time limit; the design's run-out-of-time rule decides."""

    code = StopRule.TIME_LIMIT
    gated = False

    def __init__(self, limit: float, on_timeout: TimeoutRule):
        self.limit = float(limit)
        self.on_timeout = on_timeout

    @classmethod
    def from_design(cls, ctx):
        s = ctx.design.stopping
        return None if s.time_limit is None else cls(s.time_limit, TIMEOUT_RULES[s.on_timeout]())

    def check(self, ctx, state, rows):
        hit = state.elapsed[rows] >= state.time_limit[rows]  # the design's limit, per session
        decision, by_theta = self.on_timeout.decide(ctx, state, rows)
        return Verdict(hit, decision, by_theta)


# --------------------------------------------------------------------------- running out of time


class TimeoutRule:
    """Protocol: the decision of sessions that ran out of time, and where θ̂ decides instead."""

    name: str = ""

    def decide(self, ctx: CatContext, state: BatchState, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


@TIMEOUT_RULES.register("score")
class ScoreOnTimeout(TimeoutRule):
    """Decide by θ̂ once ``min_length`` items are scored; fail before."""

    def decide(self, ctx, state, rows):
        short = state.n_scored[rows] < ctx.design.min_length
        return np.full(rows.size, Decision.FAIL, dtype=np.int8), ~short


@TIMEOUT_RULES.register("fail")
class FailOnTimeout(TimeoutRule):
    """Fail."""

    def decide(self, ctx, state, rows):
        return np.full(rows.size, Decision.FAIL, dtype=np.int8), np.zeros(rows.size, dtype=bool)


@TIMEOUT_RULES.register("nclex")
class RecentEstimatesOnTimeout(TimeoutRule):
    """NCLEX's run-out-of-time rule: fail below ``min_length``; otherwise pass only if each of the last
    ``stopping.recent_estimates`` interim estimates (of scored items) was at or above θcut (NCSBN 2023)."""

    def decide(self, ctx, state, rows):
        k = ctx.design.stopping.recent_estimates
        scored = (state.sequence[rows] >= 0) & ~state.seq_pretest[rows]  # (n, L)
        from_end = np.cumsum(scored[:, ::-1], axis=1)[:, ::-1]  # 1 at the last scored position, 2 before, ...
        recent = scored & (from_end <= k)
        cut = ctx.cut if ctx.cut is not None else np.inf
        above = np.where(recent, state.theta_path[rows] >= cut, True).all(axis=1)
        short = state.n_scored[rows] < ctx.design.min_length
        decision = np.where(~short & above, Decision.PASS, Decision.FAIL).astype(np.int8)
        return decision, np.zeros(rows.size, dtype=bool)


@TIMEOUT_RULES.register("no_decision")
class NoDecisionOnTimeout(TimeoutRule):
    """Report no decision."""

    def decide(self, ctx, state, rows):
        return np.full(rows.size, Decision.NO_DECISION, dtype=np.int8), np.zeros(rows.size, dtype=bool)


# --------------------------------------------------------------------------- the engine's side


def build_stopping_rules(ctx: CatContext) -> list[StoppingRule]:
    """The design's stopping rules in precedence order."""
    rules = (cls.from_design(ctx) for cls in STOPPING_RULES)
    return [r for r in rules if r is not None]


def final_decision(ctx: CatContext, final_theta: np.ndarray, decision: np.ndarray, by_theta: np.ndarray
                   ) -> np.ndarray:
    """Decisions of stopping sessions: ``decision`` where fixed, θ̂ against θcut where ``by_theta``.

    Without a cut there is no decision.
    """
    if ctx.cut is None:
        return np.full(final_theta.size, Decision.NO_DECISION, dtype=np.int8)
    from_theta = np.where(final_theta >= ctx.cut, Decision.PASS, Decision.FAIL).astype(np.int8)
    return np.where(by_theta, from_theta, decision).astype(np.int8)
