"""What changes while tests run: the batch state, the results, and the names of outcomes.

:class:`BatchState` holds N sessions as arrays over sessions, items and grid points; every
rule reads it and only the engine writes it. :class:`CatResult` is the frozen outcome of a
batch. :class:`StopRule`, :class:`Decision` and :class:`SelectionNote` name the codes stored in
the state's small-integer arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

__all__ = ["BatchState", "CatResult", "StopRule", "Decision", "SelectionNote"]


class StopRule(IntEnum):
    """The rule that ended a test (0 while it runs)."""

    NONE = 0
    MAX_LENGTH = 1
    SE_TARGET = 2
    CLASSIFICATION = 3
    SPRT = 4
    TIME_LIMIT = 5
    POOL_EXHAUSTED = 6

    @property
    def label(self) -> str:
        """The name shown in results and audits (``""`` for a running test)."""
        return "" if self is StopRule.NONE else self.name.lower()

    @classmethod
    def labels(cls) -> np.ndarray:
        """Labels indexed by code, for turning a code array into names in one take."""
        return np.array([r.label for r in cls])


class Decision(IntEnum):
    """A classification decision."""

    NO_DECISION = -1
    FAIL = 0
    PASS = 1

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", " ")

    @classmethod
    def labels(cls) -> np.ndarray:
        """Labels indexed by ``code + 1``."""
        return np.array([d.label for d in sorted(cls)])


class SelectionNote(IntEnum):
    """How the item at a position was chosen, when that is worth an audit line."""

    RULE = 0
    SHADOW_INCUMBENT = 1  # the shadow test hit its time limit; its best test found so far was used
    SHADOW_FALLBACK = 2  # no shadow test was found in time; the blueprint heuristic chose the item

    @property
    def label(self) -> str | None:
        return {SelectionNote.RULE: None,
                SelectionNote.SHADOW_INCUMBENT: "shadow test stopped at its time limit: best test found used",
                SelectionNote.SHADOW_FALLBACK: "no shadow test found within its time limit: "
                                               "the blueprint heuristic chose the item"}[self]


@dataclass
class BatchState:
    """Mutable state of N sessions (arrays over sessions, items and grid points).

    Attributes
    ----------
    keys : ``(N,)`` uint64 -- the sessions' random-stream keys
    theta, se : ``(N,)`` -- interim estimate and its SE
    log_post : ``(N, Q)`` -- unnormalized log-posterior on the grid
    administered, blocked : ``(N, I)`` bool -- given items; items no longer eligible (given,
        enemies of given items, passed over by Sympson-Hetter, excluded at the start)
    responses : ``(N, I)`` or None -- scored answers (NaN elsewhere), kept for MAP/ML/WLE only
    pretest_responses : ``(N, I)`` or None -- pretest answers, when the design has pretest items
    counts : ``(N, D)`` -- scored items per blueprint domain
    n_scored, n_given : ``(N,)`` -- scored items; all items (scored and pretest)
    active : ``(N,)`` bool; rule : ``(N,)`` :class:`StopRule` codes; decision : ``(N,)`` :class:`Decision`
    sequence, seq_response, seq_pretest, seq_note : ``(N, L)`` -- item, answer, pretest flag and
        :class:`SelectionNote` per position (L = max length + pretest items)
    theta_path, se_path : ``(N, L)`` -- the interim estimate after each item
    llr : ``(N,)`` -- SPRT log-likelihood ratio; elapsed : ``(N,)`` seconds
    time_limit : ``(N,)`` -- each session's time limit in seconds (the design's, scaled by an
        accommodation and lengthened by extensions; inf without one)
    pretest_slot : ``(N, L)`` bool -- positions that hold pretest items
    start_items : ``(N, S)`` -- the items given first (start rule ``items``)
    exposure_counts : ``(I,)`` -- administrations so far across sessions (for ``max_rate``)
    n_sessions : int -- the number of sessions the exposure rates are relative to
    """

    keys: np.ndarray
    theta: np.ndarray
    se: np.ndarray
    log_post: np.ndarray
    administered: np.ndarray
    blocked: np.ndarray
    responses: np.ndarray | None
    pretest_responses: np.ndarray | None
    counts: np.ndarray
    n_scored: np.ndarray
    n_given: np.ndarray
    active: np.ndarray
    rule: np.ndarray
    decision: np.ndarray
    sequence: np.ndarray
    seq_response: np.ndarray
    seq_pretest: np.ndarray
    seq_note: np.ndarray
    theta_path: np.ndarray
    se_path: np.ndarray
    llr: np.ndarray
    elapsed: np.ndarray
    time_limit: np.ndarray
    pretest_slot: np.ndarray
    start_items: np.ndarray
    exposure_counts: np.ndarray
    n_sessions: int = 1
    final_theta: np.ndarray = field(default_factory=lambda: np.zeros(0))
    final_se: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def n(self) -> int:
        return int(self.keys.size)


@dataclass(frozen=True)
class CatResult:
    """Results of N adaptive tests (arrays over simulees; item sequences 0-based bank indices).

    ``sequence[n, t]`` is the t-th item given (-1 after the end), ``scored[n, t]`` is False
    for pretest items, ``response[n, t]`` the answer, ``theta_path``/``se_path`` the interim
    estimate after each item. ``decision`` and ``rule`` hold the labels of :class:`Decision`
    and :class:`StopRule`.
    """

    theta: np.ndarray
    se: np.ndarray
    scaled: np.ndarray | None
    p_pass: np.ndarray | None
    decision: np.ndarray
    rule: np.ndarray
    n_items: np.ndarray
    sequence: np.ndarray
    scored: np.ndarray
    response: np.ndarray
    theta_path: np.ndarray
    se_path: np.ndarray
    item_ids: tuple[str, ...] = field(repr=False, default=())

    def __len__(self) -> int:
        return int(self.theta.size)

    def items_of(self, n: int, scored_only: bool = True) -> np.ndarray:
        """Bank indices of the items simulee ``n`` took, in order."""
        seq = self.sequence[n]
        keep = seq >= 0
        if scored_only:
            keep &= self.scored[n]
        return seq[keep]

    def summary(self) -> str:
        n = len(self)
        lines = [f"{n} adaptive test(s): mean length {self.n_items.mean():.2f} "
                 f"(min {self.n_items.min()}, max {self.n_items.max()})",
                 f"  theta mean {self.theta.mean():.4f}, mean SE {self.se.mean():.4f}"]
        dec, cnt = np.unique(self.decision, return_counts=True)
        lines.append("  decisions: " + ", ".join(f"{d} {c}" for d, c in zip(dec, cnt, strict=True)))
        rules, cnt = np.unique(self.rule, return_counts=True)
        lines.append("  stopped by: " + ", ".join(f"{r} {c}" for r, c in zip(rules, cnt, strict=True)))
        return "\n".join(lines)
