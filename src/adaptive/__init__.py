"""adaptive: computerized adaptive testing and item response theory for certification exams.

Start with :class:`ItemBank` (the validated item bank), :func:`estimate_ability`
(EAP, MAP, ML, WLE over a response matrix) and :class:`ScoreScale`.
"""

from .bank import Blueprint, BlueprintDomain, GridTables, Item, ItemArrays, ItemBank, ItemContent, Provenance
from .cat import CatEngine, ExamDesign, Session, simulate_cat
from .exceptions import (
    AdaptiveError,
    BankValidationError,
    CalibrationError,
    ConvergenceWarning,
    DesignError,
    DesignWarning,
    ResponseValidationError,
    ScoringError,
    SessionStateError,
)
from .resources import package_version
from .scoring import ScoreScale, ThetaEstimate, estimate_ability, pass_probability


def calibrate(responses, model="2pl", quadrature=None, priors=None, fixed=None, groups=None, **kwargs):
    """Calibrate item parameters by MML-EM (or Rasch by CML, ``method="cml"``); see
    :func:`adaptive.calibration.calibrate`."""
    from .calibration import calibrate as _calibrate

    return _calibrate(responses, model=model, quadrature=quadrature, priors=priors, fixed=fixed, groups=groups,
                      **kwargs)


__version__ = package_version()

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
    "calibrate",
    "CalibrationError",
    "AdaptiveError",
    "BankValidationError",
    "ResponseValidationError",
    "ScoringError",
    "DesignError",
    "SessionStateError",
    "DesignWarning",
    "ConvergenceWarning",
]
