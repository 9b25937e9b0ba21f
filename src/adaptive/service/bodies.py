"""The request bodies of the HTTP API: strict pydantic models (unknown fields refused, no control characters in
any text, ids and counts within a database integer)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, model_validator

__all__ = ["ID_MAX", "AnswerRequest", "BankUpload", "EligibilityRequest", "ExtendRequest", "LaunchRequest",
           "ProctorRequest", "StartRequest", "VoidRequest"]

#: the largest id and count a client may send (a database integer holds them; larger ones are refused with 422)
ID_MAX = 2**31 - 1
#: control characters no stored text may hold (NUL, in particular, PostgreSQL refuses)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _control_characters(value, where: str = "") -> str | None:
    """The path of the first string in ``value`` (nested dicts and lists) holding a control character."""
    if isinstance(value, str):
        return where or "(value)" if _CONTROL.search(value) else None
    if isinstance(value, dict):
        for k, v in value.items():
            found = _control_characters(k, f"{where}.{k}" if where else str(k)) or \
                _control_characters(v, f"{where}.{k}" if where else str(k))
            if found:
                return found
    if isinstance(value, list):
        for i, v in enumerate(value):
            found = _control_characters(v, f"{where}[{i}]")
            if found:
                return found
    return None


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_control_characters(cls, data):
        where = _control_characters(data)
        if where is not None:
            raise ValueError(f"field '{where}' holds a control character (NUL, ...); remove it")
        return data


class StartRequest(_Body):
    candidate: StrictStr | None = Field(None, max_length=200, description="your own label for the candidate")


class LaunchRequest(_Body):
    code: StrictStr = Field(min_length=1, max_length=64, description="the launch code, e.g. ABCD-EFGH-JKLM-NPQR")


class EligibilityRequest(_Body):
    candidate_id: StrictStr = Field(min_length=1, max_length=200)
    bank_version: Annotated[int, Field(ge=1, le=ID_MAX)] | None = Field(None, description="default: the active one")
    window_start: datetime | None = Field(None, description="ISO 8601; default: now")
    window_end: datetime | None = Field(None, description="ISO 8601; default: window_days after the start")
    window_days: float = Field(90.0, gt=0, le=3650)
    attempts: Annotated[StrictInt, Field(ge=1, le=100)] | None = Field(None, description="default: the design's "
                                                                                         "retakes.max_attempts")
    time_multiplier: float = Field(1.0, ge=1.0, le=4.0, description="accommodation, e.g. 1.5 for 50% more time")
    note: StrictStr | None = Field(None, max_length=1000)
    site: StrictStr | None = Field(None, min_length=1, max_length=200,
                                   description="the test centre; answer similarity compares one site and window")


class ProctorRequest(_Body):
    reason: StrictStr | None = Field(None, max_length=1000)


class VoidRequest(_Body):
    reason: StrictStr = Field(min_length=1, max_length=1000)


class ExtendRequest(_Body):
    seconds: float = Field(gt=0, le=86400, allow_inf_nan=False)
    reason: StrictStr | None = Field(None, max_length=1000)


class AnswerRequest(_Body):
    item_id: StrictStr = Field(max_length=200, description="the id of the item being answered")
    seq: StrictInt = Field(ge=1, le=ID_MAX, description="the step number the item was presented with")
    choice: Annotated[StrictInt, Field(ge=0, le=1000)] | Annotated[StrictStr, Field(max_length=20)] = Field(
        description="the option chosen: its letter ('A'...) or its index (0...)")


class BankUpload(_Body):
    bank: dict = Field(description="an item bank (the JSON `adaptive bank schema` describes)")
    design: dict | None = Field(None, description="the exam design; omitted: the active version's design")
    activate: StrictBool = Field(True, description="make it the version new sessions take")


