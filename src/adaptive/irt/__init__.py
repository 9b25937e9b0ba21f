"""The one model layer: item response models, their registry, and the struct-of-arrays items.

* :mod:`adaptive.irt.registry` -- one :class:`~adaptive.irt.registry.ModelSpec` per model name
  (family, free parameters, slope, asymptotes, aliases) and the :class:`~adaptive.irt.registry.Family` enum;
* :mod:`adaptive.irt.dichotomous` -- Rasch/1PL, 2PL, 3PL, 4PL;
* :mod:`adaptive.irt.graded` -- Samejima's graded response model;
* :mod:`adaptive.irt.partial_credit` -- GPCM and PCM;
* :mod:`adaptive.irt.mixed` -- one call over a bank that mixes families;
* :mod:`adaptive.irt.arrays` -- :class:`~adaptive.irt.arrays.ItemArrays` and
  :class:`~adaptive.irt.arrays.GridTables`.

Each family module owns both sides of its model. The θ side (``terms``, ``prob``, ``log_prob``,
``information``, ``prob_derivatives``) takes IRT parameters and broadcasts ``theta`` of any shape
against all items: results have shape ``theta.shape + (n_items, n_categories)``. The estimation
side (``internal_log_prob`` with its gradient, ``to_irt``, ``from_irt``, ``irt_jacobian``) works
in the unconstrained internal parameters calibration estimates.
"""

from . import dichotomous, graded, mixed, partial_credit, registry
from ._terms import LOG_ZERO, LogProbTerms
from .registry import MODELS, Family, ModelSpec, model_spec

__all__ = ["dichotomous", "graded", "partial_credit", "mixed", "registry", "LogProbTerms", "LOG_ZERO", "Family",
           "ModelSpec", "MODELS", "model_spec"]
