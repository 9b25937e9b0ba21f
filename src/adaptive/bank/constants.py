"""Names an item bank uses: model names and their families, item statuses."""

from __future__ import annotations

from typing import Literal

from ..irt import mixed

__all__ = ["ModelName", "Status", "MODELS", "DICHOTOMOUS_MODELS", "FAMILY_OF_MODEL", "STATUSES"]

ModelName = Literal["rasch", "1pl", "2pl", "3pl", "4pl", "graded", "gpcm", "pcm"]
Status = Literal["operational", "pretest", "retired"]

#: the model names an item may declare
MODELS: tuple[str, ...] = ("rasch", "1pl", "2pl", "3pl", "4pl", "graded", "gpcm", "pcm")
DICHOTOMOUS_MODELS = frozenset({"rasch", "1pl", "2pl", "3pl", "4pl"})
FAMILY_OF_MODEL = {
    **{m: mixed.DICHOTOMOUS for m in DICHOTOMOUS_MODELS},
    "graded": mixed.GRADED,
    "gpcm": mixed.PARTIAL_CREDIT,
    "pcm": mixed.PARTIAL_CREDIT,
}
STATUSES: tuple[str, ...] = ("operational", "pretest", "retired")
