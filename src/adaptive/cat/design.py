"""The exam design: everything that defines an adaptive test, validated at the edge.

An :class:`ExamDesign` is loaded from JSON or TOML (or built in Python) and
checked against a bank when an engine is built from the two
(:meth:`CatContext.compile <adaptive.cat.context.CatContext.compile>`): a design that cannot be met — a
blueprint that needs more items of a domain than the bank has, enemies that
make the length impossible, too few pretest items — is refused with the reason.

Examples
--------
>>> from adaptive.cat import ExamDesign
>>> design = ExamDesign(min_length=10, max_length=30, selection={"rule": "mfi"},
...                     scale={"theta_cut": 0.25}, stopping={"se_target": 0.3})
>>> design.max_length, design.selection.rule
(30, 'mfi')
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..bank import Blueprint, canonical_fingerprint
from ..exceptions import DesignError
from ..fielderrors import problem_lines
from ..scoring.scale import ScoreScale
from ..textfiles import SETTINGS_MAX_MB, read_text
from . import selection as _selection  # noqa: F401 -- registers the built-in selection rules
from . import start as _start  # noqa: F401 -- registers the built-in start rules
from . import stopping as _stopping  # noqa: F401 -- registers the built-in run-out-of-time rules
from .registry import SELECTION_RULES, START_RULES, TIMEOUT_RULES

__all__ = [
    "ExamDesign",
    "StartRule",
    "EstimatorSpec",
    "SelectionSpec",
    "ExposureSpec",
    "ContentSpec",
    "StoppingSpec",
    "ClassificationSpec",
    "SPRTSpec",
    "RetakeSpec",
    "ReportSpec",
    "SELECTION_RULES",
]

_STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

#: bounds on design values (documented in the README's RELIABILITY section): θ values within ±THETA_LIMIT,
#: grids of at most GRID_POINTS_MAX points, tests of at most LENGTH_MAX items
THETA_LIMIT = 10.0
GRID_LIMIT = 20.0
GRID_POINTS_MAX = 2001
LENGTH_MAX = 10_000



class StartRule(BaseModel):
    """How the test starts.

    * ``fixed_theta``: the first item is selected by the design's rule at ``theta``;
    * ``random_theta``: at a θ drawn uniformly from ``[low, high]`` per session;
    * ``items``: the first ``n_items`` items come from ``item_ids`` (in order, or at random
      when ``shuffle``), or, without ``item_ids``, at random among the ``window`` eligible
      items whose difficulty is nearest ``theta``.

    ``kind`` may name any rule registered in :data:`~adaptive.cat.registry.START_RULES`.
    """

    model_config = _STRICT
    kind: str = "fixed_theta"
    theta: float = Field(0.0, ge=-THETA_LIMIT, le=THETA_LIMIT)
    low: float = Field(-1.0, ge=-THETA_LIMIT, le=THETA_LIMIT)
    high: float = Field(1.0, ge=-THETA_LIMIT, le=THETA_LIMIT)
    n_items: int = Field(1, ge=1, le=LENGTH_MAX)
    item_ids: list[str] = Field(default_factory=list)
    shuffle: bool = False
    window: int = Field(10, ge=1, le=LENGTH_MAX,
                        description="'items' without item_ids: draw among this many nearest items")

    @field_validator("kind")
    @classmethod
    def _registered(cls, v: str) -> str:
        return START_RULES.check(v)

    @model_validator(mode="after")
    def _check(self) -> StartRule:
        if self.kind == "random_theta" and not self.low < self.high:
            raise ValueError(f"start: low {self.low} must be below high {self.high}")
        return self


class EstimatorSpec(BaseModel):
    """Interim (during the test) and final ability estimators.

    ``grid``: the θ grid (lo, hi, n) of EAP and of the posterior-weighted selection rules.
    ``quadrature``: ``rectangular`` weighs every grid point equally; ``trapezoid`` halves the
    two end points' weights, as catR's ``integrate.catR`` does (with catR's 33 points on
    [-4, 4] this reproduces catR's EAP and its item sequences).
    """

    model_config = _STRICT
    interim: Literal["eap", "map", "ml", "wle"] = "eap"
    final: Literal["eap", "map", "ml", "wle"] = "eap"
    prior_mean: float = Field(0.0, ge=-THETA_LIMIT, le=THETA_LIMIT)
    prior_sd: float = Field(1.0, gt=0.0, le=THETA_LIMIT)
    grid: tuple[float, float, int] = (-6.0, 6.0, 61)
    bounds: tuple[float, float] = (-4.0, 4.0)
    quadrature: Literal["rectangular", "trapezoid"] = "rectangular"

    @model_validator(mode="after")
    def _check(self) -> EstimatorSpec:
        lo, hi, n = self.grid
        if not (-GRID_LIMIT <= lo < hi <= GRID_LIMIT and 5 <= n <= GRID_POINTS_MAX):
            raise ValueError(f"estimator.grid must be (lo, hi, n) with -{GRID_LIMIT:g} <= lo < hi <= {GRID_LIMIT:g} "
                             f"and 5 <= n <= {GRID_POINTS_MAX}, got {self.grid}")
        if not -GRID_LIMIT <= self.bounds[0] < self.bounds[1] <= GRID_LIMIT:
            raise ValueError(f"estimator.bounds must be (lo, hi) with -{GRID_LIMIT:g} <= lo < hi <= {GRID_LIMIT:g}, "
                             f"got {self.bounds}")
        return self


class SelectionSpec(BaseModel):
    """The item-selection rule and its parameters.

    ``rule`` may name any rule registered in :data:`~adaptive.cat.registry.SELECTION_RULES`
    (the built-in ones are listed in :mod:`adaptive.cat.selection`).
    ``kl_z``: KL's interval is θ̂ ± kl_z/√n (Chang & Ying 1996); ``strata``: number of
    a-strata for ``a_stratified`` (Chang, Qian & Ying 2001).

    Conventions of other programs, for users who move from them:

    * ``kl_weighting``: ``interval`` (default) sums KL over the grid points within
      θ̂ ± kl_z/√n (Chang & Ying 1996); ``likelihood`` weighs KL by the likelihood of the
      answers so far over the whole grid, as catR's ``KL`` does;
    * ``mepv_weighting``: ``predictive`` (default) weighs the posterior variance after each
      answer by its posterior predictive probability (van der Linden 1998); ``point`` by the
      answer's probability at θ̂, as catR's ``EPV`` does.
    """

    model_config = _STRICT
    rule: str = "mfi"
    kl_z: float = Field(3.0, gt=0.0, le=10.0)
    strata: int = Field(4, ge=1, le=LENGTH_MAX)
    kl_weighting: Literal["interval", "likelihood"] = "interval"
    mepv_weighting: Literal["predictive", "point"] = "predictive"

    @field_validator("rule")
    @classmethod
    def _registered(cls, v: str) -> str:
        return SELECTION_RULES.check(v)


class ExposureSpec(BaseModel):
    """Exposure control; the three methods combine.

    * ``randomesque``: choose at random among the ``randomesque`` best items (1 = off);
    * ``sympson_hetter``: an item selected is administered with probability equal to its
      bank ``exposure`` parameter, otherwise passed over for that session (items without
      a parameter always pass);
    * ``max_rate``: an item whose exposure rate so far exceeds ``max_rate`` is not eligible
      (restricted maximum exposure, Revuelta & Ponsoda 1998).

    ``strata`` (increasing θ cut points) makes Sympson–Hetter conditional (Stocking & Lewis
    1998): an item is then administered with probability ``exposure_conditional[s]``, where ``s``
    is the stratum of the session's current θ̂ (items without those parameters use ``exposure``).
    """

    model_config = _STRICT
    randomesque: int = Field(1, ge=1, le=LENGTH_MAX)
    sympson_hetter: bool = False
    max_rate: float | None = Field(None, gt=0.0, le=1.0)
    strata: list[float] = Field(default_factory=list, description="θ cut points of conditional Sympson-Hetter")

    @model_validator(mode="after")
    def _check(self) -> ExposureSpec:
        if any(b <= a for a, b in zip(self.strata, self.strata[1:], strict=False)):
            raise ValueError(f"exposure.strata must increase, got {self.strata}")
        if self.strata and not self.sympson_hetter:
            raise ValueError("exposure.strata are the strata of conditional Sympson-Hetter: set sympson_hetter = true")
        return self


class ContentSpec(BaseModel):
    """Content constraints.

    ``method``: ``heuristic`` (the domain furthest below its target, then the best item
    in it), ``shadow`` (van der Linden's shadow test, a MILP per step) or ``none``.
    ``blueprint``: the design's blueprint; when absent, the bank's blueprint is used.
    ``time_limit``: seconds one shadow test may take; a solver stopped there uses the best
    test it has found, and with none the blueprint heuristic chooses the item (the audit says so).
    """

    model_config = _STRICT
    method: Literal["heuristic", "shadow", "none"] = "heuristic"
    blueprint: Blueprint | None = None
    time_limit: float = Field(10.0, gt=0.0, le=3600.0, description="seconds per shadow test")


class ClassificationSpec(BaseModel):
    """Stop once θ̂ ± z·SE excludes θcut (NCLEX-style confidence-interval rule); z = 1.96 is a
    95% two-sided interval."""

    model_config = _STRICT
    z: float = Field(1.96, gt=0.0, le=10.0)

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data):
        # designs written before 0.2 carry "sides", which never changed the rule: accept and drop it
        if isinstance(data, dict) and "sides" in data:
            data = {k: v for k, v in data.items() if k != "sides"}
        return data


class SPRTSpec(BaseModel):
    """Sequential probability ratio test (Reckase 1983) with indifference region θcut ± delta."""

    model_config = _STRICT
    delta: float = Field(0.2, gt=0.0, le=5.0)
    alpha: float = Field(0.05, gt=0.0, lt=0.5)
    beta: float = Field(0.05, gt=0.0, lt=0.5)


class StoppingSpec(BaseModel):
    """Stopping rules, combined: a test stops at ``max_length``, or once ``min_length`` is
    reached and any enabled rule fires; or at the time limit; or when the pool is exhausted.

    ``on_timeout``: ``score`` decides by θ̂ against θcut if ``min_length`` was reached
    (otherwise fail); ``fail`` fails; ``no_decision`` reports no decision; ``nclex`` fails below
    ``min_length`` and otherwise passes only if each of the last ``recent_estimates`` interim estimates
    was above the cut; or any rule registered in :data:`~adaptive.cat.registry.TIMEOUT_RULES`.
    ``seconds_per_item``: item time used in simulations when no times are given.
    """

    model_config = _STRICT
    se_target: float | None = Field(None, gt=0.0, le=THETA_LIMIT)
    classification: ClassificationSpec | None = None
    sprt: SPRTSpec | None = None
    time_limit: float | None = Field(None, gt=0.0, le=1e7, description="seconds")
    on_timeout: str = "score"
    recent_estimates: int = Field(60, ge=1, le=LENGTH_MAX,
                                  description="on_timeout 'nclex': how many of the last interim estimates must be "
                                              "above the cut to pass (60 at NCLEX)")
    seconds_per_item: float = Field(60.0, gt=0.0, le=1e6)

    @field_validator("on_timeout")
    @classmethod
    def _registered(cls, v: str) -> str:
        return TIMEOUT_RULES.check(v)


class RetakeSpec(BaseModel):
    """Retakes: how many attempts a candidate may make and how long they wait between two.

    Items a candidate saw in earlier attempts are never given again (``Session.start(exclude=...)``).
    """

    model_config = _STRICT
    max_attempts: int = Field(3, ge=1, le=100, description="attempts a candidate may make, the first included")
    wait_days: float = Field(0.0, ge=0.0, le=3650.0, description="days from the end of an attempt to the next start")


class ReportSpec(BaseModel):
    """What the candidate's score report shows.

    ``show_probability`` and ``show_theta`` put P(pass) and θ̂ with its SE in candidate-facing results
    (off: they stay in the administrators' audit). The domain performance levels are estimated from
    the candidate's own answers in each domain with item parameters fixed; a domain with fewer than
    ``min_domain_items`` scored answers is reported as "too few items"; "near" the standard when
    θ̂ ± ``near_se`` · SE contains the cut.
    """

    model_config = _STRICT
    show_probability: bool = False
    show_theta: bool = False
    min_domain_items: int = Field(4, ge=1, le=LENGTH_MAX)
    near_se: float = Field(1.0, gt=0.0, le=5.0)


class ExamDesign(BaseModel):
    """A complete adaptive-test design."""

    model_config = _STRICT
    name: str = "exam"
    scale: ScoreScale | None = None
    min_length: int = Field(1, ge=1, le=LENGTH_MAX, description="scored items")
    max_length: int = Field(30, ge=1, le=LENGTH_MAX, description="scored items")
    pretest_items: int = Field(0, ge=0, le=LENGTH_MAX, description="unscored pretest items at random positions")
    start: StartRule = StartRule()
    estimator: EstimatorSpec = EstimatorSpec()
    selection: SelectionSpec = SelectionSpec()
    exposure: ExposureSpec = ExposureSpec()
    content: ContentSpec = ContentSpec()
    stopping: StoppingSpec = StoppingSpec()
    retakes: RetakeSpec = RetakeSpec()
    report: ReportSpec = ReportSpec()

    @model_validator(mode="after")
    def _check(self) -> ExamDesign:
        problems = []
        if self.min_length > self.max_length:
            problems.append(f"min_length {self.min_length} exceeds max_length {self.max_length}")
        if self.pretest_items > self.min_length:
            problems.append(f"pretest_items {self.pretest_items} exceeds min_length {self.min_length}: pretest "
                            "positions are drawn within the first min_length + pretest_items positions so that "
                            "every pretest item is given; lower pretest_items or raise min_length")
        cut = self.theta_cut
        lo, hi = self.estimator.bounds
        if cut is not None and not lo < cut < hi:
            problems.append(f"scale.theta_cut {cut:g} lies outside the estimator's bounds [{lo:g}, {hi:g}]: no "
                            "estimate could reach it, so every test would end in the same decision; check the cut")
        if self.exposure.strata and not all(-THETA_LIMIT <= v <= THETA_LIMIT for v in self.exposure.strata):
            problems.append(f"exposure.strata must lie within ±{THETA_LIMIT:g}, got {self.exposure.strata}")
        needs_cut = self.stopping.classification is not None or self.stopping.sprt is not None \
            or self.selection.rule == "mfi_cut" or self.stopping.on_timeout == "nclex"
        if needs_cut and self.scale is None:
            problems.append("classification, SPRT and mfi_cut need a cut: add scale = {theta_cut = ...}")
        if self.start.kind == "items" and self.start.item_ids and len(self.start.item_ids) < self.start.n_items:
            problems.append(f"start.n_items {self.start.n_items} exceeds the {len(self.start.item_ids)} start item ids")
        if self.start.kind == "items" and self.start.n_items > self.max_length:
            problems.append(f"start.n_items {self.start.n_items} exceeds max_length {self.max_length}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def fingerprint(self) -> str:
        """Short SHA-256 (16 hex digits) of the design's canonical JSON."""
        return canonical_fingerprint(self)

    def __init__(self, /, **data) -> None:
        try:
            super().__init__(**data)
        except ValidationError as err:
            problem = DesignError(_design_problems(err, "design"))
            problem.lines = tuple(problem_lines(err, ExamDesign))
            raise problem from None

    @property
    def theta_cut(self) -> float | None:
        return None if self.scale is None else self.scale.theta_cut

    # ------------------------------------------------------------------ I/O
    @classmethod
    def load(cls, path: str | Path) -> ExamDesign:
        """Read a design from ``.json`` or ``.toml``; errors name the file and the field."""
        path = Path(path)
        text = read_text(path, "design", DesignError, max_mb=SETTINGS_MAX_MB)
        try:
            data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as err:
            kind = "TOML" if path.suffix.lower() == ".toml" else "JSON"
            raise DesignError(f"design {str(path)!r} is not valid {kind}: {err}") from None
        except RecursionError:
            raise DesignError(f"design {str(path)!r} is nested too deeply to be a design") from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: dict, source: str = "design") -> ExamDesign:
        if not isinstance(data, dict):
            raise DesignError(f"{source}: a design must be a JSON/TOML object (a table of fields), got "
                              f"{type(data).__name__}")
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            raise DesignError(_design_problems(err, source)) from None

    def to_json(self, path: str | Path | None = None) -> str:
        text = self.model_dump_json(indent=2, exclude_defaults=True)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text


def _design_problems(err: ValidationError, source: str) -> str:
    """One message for every problem of a design, each naming its field."""
    errors = err.errors()
    inner = errors[0].get("ctx", {}).get("error") if len(errors) == 1 and not errors[0]["loc"] else None
    # a design validated through model_validate runs ExamDesign.__init__, whose own DesignError comes back
    # wrapped at the top level: report its problems once, under this source
    lines = list(getattr(inner, "lines", ())) or problem_lines(err, ExamDesign)
    if len(lines) == 1:
        return f"{source}: {lines[0]}"
    return f"{source}: {len(lines)} problem(s):\n  - " + "\n  - ".join(lines)
