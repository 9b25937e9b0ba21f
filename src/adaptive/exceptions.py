"""Typed errors and warnings of the package.

Every error message follows one shape: *what* was wrong, *where* (item id,
row, field, session) and *what to do*.
"""

from __future__ import annotations

__all__ = [
    "AdaptiveError",
    "BankValidationError",
    "ResponseValidationError",
    "ScoringError",
    "DesignError",
    "SessionStateError",
    "ConvergenceWarning",
    "DesignWarning",
    "CalibrationError",
]


class AdaptiveError(Exception):
    """Base class of every error raised by :mod:`adaptive`."""


class BankValidationError(AdaptiveError, ValueError):
    """An item bank (or one of its items) is invalid.

    Attributes
    ----------
    problems : list of str
        Every problem found, one line each; ``str(error)`` joins them.
    """

    def __init__(self, problems: list[str] | str, source: str | None = None):
        if isinstance(problems, str):
            problems = [problems]
        self.problems = list(problems)
        self.source = source
        where = f" in {source}" if source else ""
        n = len(self.problems)
        if n == 1:  # one problem: one line
            super().__init__(f"{source}: {self.problems[0]}" if source else self.problems[0])
            return
        head = f"{n} problems found{where}:"
        super().__init__(head + "\n" + "\n".join(f"  - {p}" for p in self.problems))


class ResponseValidationError(AdaptiveError, ValueError):
    """A response matrix does not fit the bank (shape, category range, type)."""


class ScoringError(AdaptiveError, ValueError):
    """A scoring request cannot be carried out (bad method, bad grid, impossible cut...)."""


class DesignError(AdaptiveError, ValueError):
    """An exam design is invalid, or cannot be met with the given bank."""

    #: the problems one per line (``field 'a.b': ...``) when the design's fields were at fault
    lines: tuple[str, ...] = ()


class SessionStateError(AdaptiveError):
    """A call does not fit the session's state (answering an item not presented, twice, after the end...).

    The session is left unchanged.
    """


class ConvergenceWarning(UserWarning):
    """An iterative routine stopped before meeting its convergence criterion."""


class DesignWarning(UserWarning):
    """A design was accepted, but something about it may not behave as intended (named in the message)."""


class CalibrationError(AdaptiveError, ValueError):
    """Data or settings that a calibration cannot use (bad categories, unidentified parameters, ...)."""
