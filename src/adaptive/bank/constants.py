"""Names an item bank uses: model names (from the model registry) and item statuses."""

from __future__ import annotations

from typing import Literal

from ..irt.registry import MODEL_NAMES, Family
from ..irt.registry import MODELS as _SPECS

__all__ = ["ModelName", "Status", "MODELS", "DICHOTOMOUS_MODELS", "FAMILY_OF_MODEL", "STATUSES"]

ModelName = Literal["rasch", "1pl", "2pl", "3pl", "4pl", "graded", "gpcm", "pcm"]
Status = Literal["operational", "pretest", "retired"]

assert set(ModelName.__args__) == set(MODEL_NAMES), "ModelName must list the registry's models"  # type: ignore[attr-defined]
#: the model names an item may declare (canonical; aliases are normalized on reading)
MODELS: tuple[str, ...] = MODEL_NAMES
#: dichotomous model names
DICHOTOMOUS_MODELS = frozenset(n for n, s in _SPECS.items() if s.family is Family.DICHOTOMOUS)
#: family of each model name
FAMILY_OF_MODEL = {n: s.family for n, s in _SPECS.items()}
STATUSES: tuple[str, ...] = ("operational", "pretest", "retired")
