"""One spec per model name: family, free parameters, slope, asymptotes, and the names users may write.

Everything that needs to know what a model name means (the bank schema, calibration, the CLI, the
service, simulation) asks :func:`model_spec`. A family (:class:`Family`) is the response function;
a model is a family with constraints (Rasch is the 2PL family with the slope fixed at 1, the 1PL has
one slope shared by its items, the 3PL frees the lower asymptote, ...).

Internal parameters (DESIGN.md convention 4) are per family:

================  ============================================  =====================================
family            internal vector ``phi``                        IRT parameters
================  ============================================  =====================================
dichotomous       ``[a, delta, gamma, omega]``                  ``a, b = -delta/a, c = expit(gamma),
                                                                d = expit(omega)``
graded            ``[a, delta_1 .. delta_{K-1}]``                ``a, b_k = -delta_k / a``
partial credit    ``[a, d_1 .. d_{K-1}]`` (``d_0 = 0``)          ``a, b_k = -(d_k - d_{k-1}) / a``
================  ============================================  =====================================

A family with a slope vector (multidimensional) or per-category slopes (nominal) is a new
:class:`Family` member with its own module and its own internal layout; ``n_internal`` is the only
place that sizes ``phi``.

Examples
--------
>>> from adaptive.irt.registry import model_spec
>>> model_spec("GRM").name, model_spec("2PL").free_internal(2, 4).tolist()
('graded', [True, True, False, False])
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

import numpy as np

__all__ = ["Family", "ModelSpec", "MODELS", "MODEL_NAMES", "model_spec", "canonical_model"]


class Family(IntEnum):
    """Response-function families (the codes stored in ``ItemArrays.family``)."""

    DICHOTOMOUS = 0
    GRADED = 1
    PARTIAL_CREDIT = 2

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class ModelSpec:
    """What a model name means.

    Attributes
    ----------
    name : canonical name (what banks store)
    family : the response function
    title : a readable name
    slope : ``free`` (per item), ``fixed`` (at 1: Rasch, PCM) or ``common`` (one shared slope: 1PL)
    lower_asymptote, upper_asymptote : whether c (guessing) and d (slipping) are estimated
    aliases : other names accepted for it (compared case-insensitively)
    """

    name: str
    family: Family
    title: str
    slope: Literal["free", "fixed", "common"] = "free"
    lower_asymptote: bool = False
    upper_asymptote: bool = False
    aliases: tuple[str, ...] = ()

    @property
    def dichotomous(self) -> bool:
        return self.family is Family.DICHOTOMOUS

    def n_internal(self, n_cat: int) -> int:
        """Length of an item's internal vector ``phi``."""
        return n_internal(self.family, n_cat)

    def free_internal(self, n_cat: int, p: int) -> np.ndarray:
        """``(p,)`` bool: the internal parameters a calibration estimates item by item (a common slope is
        estimated once for all the items that share it, so it is not free here)."""
        free = np.zeros(p, dtype=bool)
        free[0] = self.slope == "free"
        if self.dichotomous:
            free[1] = True
            free[2] = self.lower_asymptote
            free[3] = self.upper_asymptote
        else:
            free[1:n_cat] = True
        return free

    def irt_parameter_names(self, n_cat: int) -> tuple[str, ...]:
        if self.dichotomous:
            return ("a", "b", "c", "d")
        return ("a",) + tuple(f"b{k}" for k in range(1, n_cat))


def n_internal(family: int, n_cat: int) -> int:
    """Length of ``phi`` for an item of ``family`` with ``n_cat`` categories."""
    return 4 if family == Family.DICHOTOMOUS else int(n_cat)


#: every model, by canonical name
MODELS: dict[str, ModelSpec] = {s.name: s for s in (
    ModelSpec("rasch", Family.DICHOTOMOUS, "Rasch", slope="fixed", aliases=("rasch model",)),
    ModelSpec("1pl", Family.DICHOTOMOUS, "one-parameter logistic", slope="common", aliases=("1plm",)),
    ModelSpec("2pl", Family.DICHOTOMOUS, "two-parameter logistic", aliases=("2plm",)),
    ModelSpec("3pl", Family.DICHOTOMOUS, "three-parameter logistic", lower_asymptote=True, aliases=("3plm",)),
    ModelSpec("4pl", Family.DICHOTOMOUS, "four-parameter logistic", lower_asymptote=True, upper_asymptote=True,
              aliases=("4plm",)),
    ModelSpec("graded", Family.GRADED, "Samejima's graded response model", aliases=("grm", "graded response")),
    ModelSpec("gpcm", Family.PARTIAL_CREDIT, "generalized partial credit model",
              aliases=("generalized partial credit",)),
    ModelSpec("pcm", Family.PARTIAL_CREDIT, "partial credit model", slope="fixed", aliases=("partial credit",)),
)}
#: canonical model names
MODEL_NAMES: tuple[str, ...] = tuple(MODELS)
_LOOKUP = {**{n: n for n in MODELS}, **{a: s.name for s in MODELS.values() for a in s.aliases}}


def canonical_model(name: str) -> str:
    """The canonical name of a model written in any case or by an alias (``"GRM"`` -> ``"graded"``).

    Raises ``ValueError`` naming the accepted names, with the nearest one, for an unknown name.
    """
    key = str(name).strip().lower()
    if key in _LOOKUP:
        return _LOOKUP[key]
    near = difflib.get_close_matches(key, list(_LOOKUP), n=1)
    hint = f"; did you mean {_LOOKUP[near[0]]!r}?" if near else ""
    raise ValueError(f"unknown model {name!r}{hint} (models: {', '.join(MODEL_NAMES)}; aliases such as 'grm' and "
                     "'2PL' are accepted)")


def model_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of a model name (any case, or an alias)."""
    spec = MODELS.get(name)  # the canonical name: the common case, one lookup
    return spec if spec is not None else MODELS[canonical_model(name)]
