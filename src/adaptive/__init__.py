"""adaptive: computerized adaptive testing and item response theory for certification exams.

Start with :class:`ItemBank` (the validated item bank), :func:`estimate_ability`
(EAP, MAP, ML, WLE over a response matrix) and :class:`ScoreScale`.
"""

from .bank import Blueprint, BlueprintDomain, GridTables, Item, ItemArrays, ItemBank, ItemContent, Provenance
from .exceptions import (
    AdaptiveError,
    BankValidationError,
    ConvergenceWarning,
    ResponseValidationError,
    ScoringError,
    DesignError,
    ItemPoolExhaustedError,
    SessionStateError,
)
from .scoring import ScoreScale, ThetaEstimate, estimate_ability, pass_probability
from .cat import CatEngine, ExamDesign, Session, simulate_cat

__version__ = "0.1.0"

__all__ = [
    "ItemBank",
    "Item",
    "ItemArrays",
    "GridTables",
    "ItemContent",
    "Provenance",
    "Blueprint",
    "BlueprintDomain",
    "estimate_ability",
    "ThetaEstimate",
    "ScoreScale",
    "pass_probability",
    "ExamDesign",
    "CatEngine",
    "Session",
    "simulate_cat",
    "AdaptiveError",
    "BankValidationError",
    "ResponseValidationError",
    "ScoringError",
    "DesignError",
    "SessionStateError",
    "ItemPoolExhaustedError",
    "ConvergenceWarning",
]
