"""Calibration: marginal maximum likelihood (EM) for every model, standard errors, fit, linking and DIF.

Start with :func:`calibrate`::

    >>> import numpy as np
    >>> from adaptive.synthetic import synthetic_bank, simulate_responses
    >>> bank = synthetic_bank(20, model="2pl", rng=1)
    >>> x = simulate_responses(bank.compile(), np.random.default_rng(2).standard_normal(2000), rng=3)
    >>> fit = calibrate(x, model="2pl", item_ids=bank.ids)
    >>> fit.converged, round(float(np.corrcoef(fit.a, bank.compile().a)[0, 1]), 2) > 0.9
    (True, True)
"""

from .api import as_response_data, calibrate
from .dif import dif_logistic, dif_mantel_haenszel
from .fit import item_fit, person_fit
from .linking import LinkingResult, link
from .priors import PRIOR_SETS, Prior
from .result import CalibrationResult
from .se import StandardErrors

__all__ = [
    "calibrate",
    "as_response_data",
    "CalibrationResult",
    "StandardErrors",
    "IRTModel",
    "Prior",
    "PRIOR_SETS",
    "item_fit",
    "person_fit",
    "link",
    "LinkingResult",
    "dif_mantel_haenszel",
    "dif_logistic",
]


def __getattr__(name):  # scikit-learn is imported only when the estimator is used
    if name == "IRTModel":
        from .estimator import IRTModel

        return IRTModel
    raise AttributeError(f"module 'adaptive.calibration' has no attribute {name!r}")
