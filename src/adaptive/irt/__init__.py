"""Item response models, one family per module.

* :mod:`adaptive.irt.dichotomous` -- Rasch/1PL, 2PL, 3PL, 4PL;
* :mod:`adaptive.irt.graded` -- Samejima's graded response model;
* :mod:`adaptive.irt.partial_credit` -- GPCM and PCM;
* :mod:`adaptive.irt.mixed` -- one call over a bank that mixes them.

Each family gives ``terms`` (log-probabilities with their first and second
θ-derivatives), ``prob``, ``log_prob``, ``information``, ``prob_derivatives``
and ``log_prob_param_grad``, broadcasting ``theta`` of any shape against all
items: the result has shape ``theta.shape + (n_items, n_categories)``.
"""

from . import dichotomous, graded, mixed, partial_credit
from ._terms import LOG_ZERO, LogProbTerms

__all__ = ["dichotomous", "graded", "partial_credit", "mixed", "LogProbTerms", "LOG_ZERO"]
