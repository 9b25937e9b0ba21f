"""What people write for a pool: ``pool.toml`` (the configuration) and ``items.toml`` (the authored items)."""

from __future__ import annotations

import datetime as _dt
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..bank import Blueprint
from ..exceptions import BankValidationError
from ..textfiles import SETTINGS_MAX_MB, read_text

__all__ = ["AuthoredItem", "PoolConfig", "load_pool_config", "load_authored_items", "CognitiveLevel"]

_STRICT = ConfigDict(extra="forbid", frozen=True)
CognitiveLevel = Literal["recall", "application", "analysis"]


class AuthoredItem(BaseModel):
    """One authored item as a writer enters it in ``items.toml`` (no parameters)."""

    model_config = _STRICT
    id: str = Field(min_length=1)
    domain: str = Field(min_length=1)
    subdomain: str | None = None
    cognitive_level: CognitiveLevel
    code_set: str = Field(min_length=1, description="the code set or rule source the item relies on")
    code_set_year: int = Field(ge=1990, le=2100, description="the edition the fact was checked against")
    status: Literal["operational", "pretest"] = "operational"
    enemies: list[str] = Field(default_factory=list)
    stem: str = Field(min_length=10)
    options: list[str] = Field(min_length=2)
    key: str = Field(pattern=r"^[A-Z]$")
    rationale: str = Field(min_length=10)
    shuffle: bool = Field(True, description="false keeps the authored option order (e.g. 'All of the above')")

    @model_validator(mode="after")
    def _check(self) -> AuthoredItem:
        problems = []
        if any(not o.strip() for o in self.options):
            problems.append("field 'options': an option is empty")
        if len({o.strip().casefold() for o in self.options}) != len(self.options):
            problems.append("field 'options': options must be distinct")
        if ord(self.key) - ord("A") >= len(self.options):
            problems.append(f"field 'key': {self.key!r} is not among the {len(self.options)} options")
        if problems:
            raise ValueError("\n".join(problems))
        return self


class FieldTestSpec(BaseModel):
    """The simulated field test that the pool's parameters are calibrated on.

    Generating parameters: ``log a ~ N(log_a_mean, log_a_sd)``, ``b ~ N(b_mean[level] + b_shift,
    b_sd)``, ``c ~ Beta(*c_beta)``. Design: ``forms`` spiraled forms of ``anchor_items`` common
    operational items (spread over domains) plus a share of the other items, each form taken by
    ``candidates_per_form`` candidates with θ ~ N(0, 1) (the field-test population defines the scale).
    """

    model_config = _STRICT
    seed: int
    date: _dt.date
    forms: int = Field(3, ge=1)
    anchor_items: int = Field(24, ge=0)
    candidates_per_form: int = Field(1500, ge=200)
    log_a_mean: float = 0.1
    log_a_sd: float = Field(0.25, gt=0)
    b_mean: dict[CognitiveLevel, float] = {"recall": -0.7, "application": 0.0, "analysis": 0.6}
    b_shift: float = 0.0
    b_sd: float = Field(0.7, gt=0)
    c_beta: tuple[float, float] = (5.0, 17.0)


class CalibrationSpec(BaseModel):
    model_config = _STRICT
    model: Literal["2pl", "3pl"] = "3pl"
    priors: str | None = "3pl"
    quadrature: int = Field(61, ge=5)
    decimals: int = Field(4, ge=2, le=8, description="parameters are stored rounded to this many decimals")


class StandardSpec(BaseModel):
    """The pass standard, stated as a raw cut or a percent of the reference form."""

    model_config = _STRICT
    method: Literal["raw_cut", "percent"]
    form_length: int = Field(ge=5, description="length L of the reference form (operational items, by blueprint)")
    raw_cut: float | None = Field(None, gt=0)
    percent: float | None = Field(None, gt=0, lt=100)
    scaled_cut: float = 300.0
    slope: float = 50.0
    minimum: float = 100.0
    maximum: float = 400.0
    source: str = ""

    @model_validator(mode="after")
    def _check(self) -> StandardSpec:
        if self.method == "raw_cut" and (self.raw_cut is None or self.raw_cut >= self.form_length):
            raise ValueError("method 'raw_cut' needs raw_cut below form_length")
        if self.method == "percent" and self.percent is None:
            raise ValueError("method 'percent' needs percent (e.g. 85)")
        return self

    @property
    def raw(self) -> float:
        if self.method == "raw_cut":
            assert self.raw_cut is not None  # checked by the validator
            return float(self.raw_cut)
        assert self.percent is not None
        return self.percent / 100.0 * self.form_length


class BankSpec(BaseModel):
    model_config = _STRICT
    name: str
    version: str
    description: str
    n_options: int = Field(4, ge=2)


class PoolConfig(BaseModel):
    """``pool.toml``: everything that defines a pool besides its items."""

    model_config = _STRICT
    bank: BankSpec
    blueprint: Blueprint
    field_test: FieldTestSpec
    calibration: CalibrationSpec = CalibrationSpec()
    standard: StandardSpec
    design: dict = Field(description="ExamDesign fields; the scale (cut) is filled in from the standard")


def _problems_of(err: ValidationError, where: str) -> list[str]:
    out = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        for line in e["msg"].removeprefix("Value error, ").split("\n"):
            out.append(f"{where}{'field ' + repr(loc) + ': ' if loc else ''}{line}")
    return out


def load_pool_config(pool_dir: str | Path) -> PoolConfig:
    """Read and validate ``pool_dir/pool.toml``."""
    path = Path(pool_dir) / "pool.toml"
    try:
        data = tomllib.loads(read_text(path, "pool configuration", BankValidationError, max_mb=SETTINGS_MAX_MB))
    except tomllib.TOMLDecodeError as err:
        raise BankValidationError([f"not valid TOML: {err}"], str(path)) from None
    try:
        return PoolConfig.model_validate(data)
    except ValidationError as err:
        raise BankValidationError(_problems_of(err, ""), str(path)) from None


def load_authored_items(path: str | Path, blueprint: Blueprint | None = None, n_options: int | None = None
                        ) -> list[AuthoredItem]:
    """Read ``items.toml`` and report every problem at once, by item id and field.

    Checks beyond each item's own schema: unique ids, enemies that exist, domains in the
    blueprint, and exactly ``n_options`` options when given.
    """
    path = Path(path)
    try:
        records = tomllib.loads(read_text(path, "authored items", BankValidationError)).get("item", [])
    except tomllib.TOMLDecodeError as err:
        raise BankValidationError([f"not valid TOML: {err}"], str(path)) from None
    problems, items = [], []
    for pos, rec in enumerate(records):
        where = f"item {rec.get('id')!r} (position {pos}), "
        try:
            items.append(AuthoredItem.model_validate(rec))
        except ValidationError as err:
            problems += _problems_of(err, where)
            continue
        if n_options is not None and len(rec["options"]) != n_options:
            problems.append(f"{where}field 'options': {len(rec['options'])} options; this pool's items have "
                            f"{n_options}")
    ids = [it.id for it in items]
    seen = set()
    for iid in ids:
        if ids.count(iid) > 1 and iid not in seen:
            problems.append(f"item {iid!r}, field 'id': used {ids.count(iid)} times; every item needs its own id")
            seen.add(iid)
    known = set(ids)
    for it in items:
        missing = [e for e in it.enemies if e not in known]
        if missing:
            problems.append(f"item {it.id!r}, field 'enemies': unknown item(s) {missing}")
        if blueprint is not None and it.domain not in blueprint.names:
            problems.append(f"item {it.id!r}, field 'domain': {it.domain!r} is not a blueprint domain "
                            f"({list(blueprint.names)})")
    if not records:
        problems.append("no [[item]] tables found")
    if problems:
        raise BankValidationError(problems, str(path))
    return items
