"""Pass standards: a raw cut on a reference form, turned into a θ cut by inverting the form's TCC.

A program states its standard in raw-score terms ("52 of 75 correct" on a reference form built to the
blueprint, or "85% of the maximum"). :meth:`PassStandard.derive` solves TCC(θ*) = R on that form
(Ferdous & Plake 2008; the usual IRT translation of an Angoff-type raw cut) and records the SEM at the cut;
the adaptive exam then decides against θ*. ``standard.json`` in a pool directory is this object.

Examples
--------
>>> from adaptive.synthetic import synthetic_bank
>>> bank = synthetic_bank(40, model="2pl", rng=1)
>>> std = PassStandard.derive(bank, list(bank.ids[:30]), raw_cut=21, source="example")
>>> std.percent_cut, round(std.theta_cut, 2) == round(std.scale.theta_cut, 2)
(70.0, True)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..exceptions import ScoringError
from ..fielderrors import problem_lines
from .scale import ScoreScale, theta_for_raw_score

__all__ = ["PassStandard"]


class PassStandard(BaseModel):
    """A pass standard and the θ cut it gives.

    Attributes
    ----------
    method : ``raw_cut`` ("R of L") or ``percent`` ("p% of the reference form")
    source : where the standard comes from (a policy, a standard-setting study)
    reference_form : the item ids of the reference form
    form_length : L, its length; raw_cut : R; percent_cut : 100 R / L
    theta_cut : θ* with TCC(θ*) = R, rounded to 4 decimals
    sem_at_cut : 1 / sqrt(test information of the form at θ*)
    scale : the reporting scale anchored at θ*
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["raw_cut", "percent"]
    source: str = ""
    reference_form: list[str] = Field(min_length=1)
    form_length: int = Field(ge=1)
    raw_cut: float = Field(gt=0)
    percent_cut: float = Field(gt=0, lt=100)
    theta_cut: float
    sem_at_cut: float = Field(gt=0)
    scale: ScoreScale

    @model_validator(mode="after")
    def _check(self) -> PassStandard:
        if len(self.reference_form) != self.form_length:
            raise ValueError(f"form_length {self.form_length} but the reference form lists {len(self.reference_form)} "
                             "items")
        if not self.raw_cut < self.form_length:
            raise ValueError(f"raw_cut {self.raw_cut} must be below form_length {self.form_length}")
        if abs(self.scale.theta_cut - self.theta_cut) > 1e-9:
            raise ValueError(f"scale.theta_cut {self.scale.theta_cut} differs from theta_cut {self.theta_cut}")
        return self

    @classmethod
    def derive(cls, bank, reference_form: list[str], *, raw_cut: float,
               method: Literal["raw_cut", "percent"] = "raw_cut", source: str = "", scaled_cut: float = 300.0,
               slope: float = 50.0, minimum: float = 100.0, maximum: float = 400.0) -> PassStandard:
        """The standard "``raw_cut`` of ``len(reference_form)``" on ``bank``'s items."""
        missing = [i for i in reference_form if i not in bank.index]
        if missing:
            raise ScoringError(f"reference form items {missing[:10]} are not in bank {bank.name!r}")
        arrays = bank.compile().subset([bank.index[i] for i in reference_form])
        theta_cut = round(float(theta_for_raw_score(arrays, raw_cut)), 4)
        info_at_cut = float(arrays.information(np.array([theta_cut])).sum())
        length = len(reference_form)
        return cls(method=method, source=source, reference_form=list(reference_form), form_length=length,
                   raw_cut=float(raw_cut), percent_cut=round(100.0 * raw_cut / length, 4), theta_cut=theta_cut,
                   sem_at_cut=round(1.0 / np.sqrt(info_at_cut), 4),
                   scale=ScoreScale(theta_cut=theta_cut, scaled_cut=scaled_cut, slope=slope, minimum=minimum,
                                    maximum=maximum))

    def theta_cut_for(self, bank) -> float:
        """The θ cut the standard gives with ``bank``'s current parameters (rounded as :attr:`theta_cut`)."""
        arrays = bank.compile().subset([bank.index[i] for i in self.reference_form])
        return round(float(theta_for_raw_score(arrays, self.raw_cut)), 4)

    # ------------------------------------------------------------------ I/O
    def to_json(self, path: str | Path | None = None) -> str:
        """``standard.json`` text (the scale's ``decimals`` only when not the default 0)."""
        data = self.model_dump(mode="json")
        data["scale"] = {k: getattr(self.scale, k) for k in ("theta_cut", "scaled_cut", "slope", "minimum", "maximum")}
        if self.scale.decimals:
            data["scale"]["decimals"] = self.scale.decimals
        text = json.dumps(data, indent=2)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    @classmethod
    def load(cls, path: str | Path) -> PassStandard:
        """Read ``standard.json``; errors name the file and the field."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as err:
            raise ScoringError(f"cannot read pass standard {str(path)!r}: {err.strerror}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ScoringError(f"pass standard {str(path)!r} is not valid JSON: {err}") from None
        if not isinstance(data, dict):
            raise ScoringError(f"pass standard {str(path)!r} must be a JSON object")
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            lines = problem_lines(err, cls)
            raise ScoringError(f"{path}: {len(lines)} problem(s):\n  - " + "\n  - ".join(lines)) from None
