"""The parts of an item record that are not parameters: provenance, parameter history and authored content."""

from __future__ import annotations

import datetime as _dt

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .constants import Status

__all__ = ["Provenance", "ParameterRecord", "ItemContent"]

_FROZEN = ConfigDict(extra="forbid", frozen=True)


class Provenance(BaseModel):
    """Where an item's parameters come from."""

    model_config = _FROZEN
    method: str | None = Field(None, description="how the parameters were obtained, e.g. 'MML-EM 2PL'")
    software: str | None = None
    sample_size: int | None = Field(None, ge=1)
    date: _dt.date | None = None
    note: str | None = None


class ParameterRecord(BaseModel):
    """One earlier state of an item: its model, parameters and status until ``until``, and where they came from."""

    model_config = _FROZEN
    model: str
    a: float
    b: float | None = None
    c: float = 0.0
    d: float = 1.0
    thresholds: list[float] | None = None
    status: Status = "operational"
    until: _dt.date | None = Field(None, description="the date these parameters were replaced")
    provenance: Provenance | None = None
    reason: str | None = Field(None, description="why they were replaced (promotion, recalibration, retirement)")


class ItemContent(BaseModel):
    """What the candidate sees; the numerics never need it.

    ``key`` is the letter of the correct option (``"A"`` is ``options[0]``). ``shuffle``: whether a
    delivery may present the options in another order per candidate (false for options whose order
    carries meaning, such as "All of the above" or a range scale).
    """

    model_config = _FROZEN
    stem: str = Field(min_length=1)
    options: list[str] = Field(default_factory=list)
    key: str | None = Field(None, pattern=r"^[A-Z]$")
    rationale: str | None = None
    cognitive_level: str | None = None
    shuffle: bool = True

    @model_validator(mode="after")
    def _check(self) -> ItemContent:
        problems = []
        if len(set(o.strip().casefold() for o in self.options)) != len(self.options):
            problems.append("field 'content.options': options must be distinct")
        if self.key is not None and ord(self.key) - ord("A") >= len(self.options):
            problems.append(f"field 'content.key': key {self.key!r} is not among the {len(self.options)} options")
        if problems:
            raise ValueError("\n".join(problems))
        return self
