"""Item pools: authored items + a pool configuration → a calibrated bank, a pass standard and an exam design.

A pool directory (``item_pools/cmcs``, ``item_pools/cmrs``) holds what people write:

* ``items.toml`` -- the authored items (``[[item]]`` tables: id, domain, subdomain,
  cognitive_level, code_set, code_set_year, status, enemies, stem, options, key, rationale);
* ``pool.toml`` -- the bank's name and version, the blueprint (domains, proportions and
  their sources), the simulated field test, the calibration settings, the pass standard
  and the adaptive exam design;

and what :func:`build_pool` writes from them, exactly reproducibly from the seed:

* ``bank.json`` -- content + parameters calibrated by :func:`adaptive.calibrate` on the
  simulated field test, with provenance per item;
* ``design.json`` -- the exam design with the θ cut of the pass standard;
* ``standard.json`` -- how the cut was derived (reference form, raw cut, TCC inversion,
  conditional SE at the cut).

The field test is a simulation, because no response data from real candidates exist
for these items: generating ("true") parameters are drawn per item from distributions
that depend on the item's cognitive level, candidates answer a spiraled multi-form
design with common anchor items, and the calibration module recovers the parameters
the bank then carries. The generating parameters are never stored in the bank; they are
returned by :func:`build_pool` so the recovery can be reported.

Pass standards (see ``item_pools/README.md`` for the reasoning):

* ``raw_cut``: "R of L correct" on a reference form of L operational items drawn to the
  blueprint; θ* solves TCC(θ*) = R (Ferdous & Plake 2008; the usual IRT translation of
  an Angoff-type raw cut);
* ``percent``: "p of the maximum score" on the reference form; θ* solves TCC(θ*) = p·L.
"""

from __future__ import annotations

import datetime as _dt
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ._random import as_generator
from .bank import Blueprint, ItemBank, Provenance
from .exceptions import BankValidationError
from .synthetic import allocate

__all__ = [
    "AuthoredItem",
    "PoolBuild",
    "PoolConfig",
    "PoolInfo",
    "build_pool",
    "check_pool",
    "load_authored_items",
    "load_pool_config",
    "pool_info",
    "reference_form",
    "write_pool",
]

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
        return float(self.raw_cut) if self.method == "raw_cut" else self.percent / 100.0 * self.form_length


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
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise BankValidationError([f"cannot read the pool configuration: {err.strerror}"], str(path)) from None
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
        records = tomllib.loads(path.read_text(encoding="utf-8")).get("item", [])
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


def reference_form(bank: ItemBank, blueprint: Blueprint, length: int) -> list[str]:
    """The reference form of a pool: ``length`` operational items allocated to the blueprint's domains
    by largest remainder (domains without a proportion get none), the first items of each domain in
    bank order. Deterministic, so the cut can be recomputed from the bank alone."""
    props = [d.proportion or 0.0 for d in blueprint.domains]
    counts = allocate(props, length)
    form = []
    for dom, k in zip(blueprint.names, counts):
        ids = [it.id for it in bank.items if it.domain == dom and it.status == "operational"]
        if len(ids) < k:
            raise BankValidationError([f"the reference form needs {k} operational items of domain {dom!r}; the bank "
                                       f"has {len(ids)}"])
        form += ids[:k]
    return form


@dataclass(frozen=True)
class PoolBuild:
    """What :func:`build_pool` produces (written by :func:`write_pool`)."""

    bank: ItemBank
    design: object  # ExamDesign
    standard: dict
    true_parameters: dict[str, dict[str, float]]
    responses: np.ndarray
    calibration: object

    def recovery(self) -> dict[str, dict[str, float]]:
        """Bias and RMSE of the calibrated a, b, c against the generating values."""
        out = {}
        for p in ("a", "b", "c"):
            est = np.array([getattr(self.bank.item(i), p) for i in self.true_parameters])
            true = np.array([v[p] for v in self.true_parameters.values()])
            out[p] = {"bias": float(np.mean(est - true)), "rmse": float(np.sqrt(np.mean((est - true) ** 2)))}
        return out


def build_pool(pool_dir: str | Path, *, progress=None) -> PoolBuild:
    """Simulate the field test, calibrate, and derive the standard and the design of one pool.

    Everything random comes from ``field_test.seed``, in a fixed order, so a rerun gives the
    same bank bit for bit (parameters are stored rounded to ``calibration.decimals``).
    """
    from .calibration import calibrate
    from .cat.design import ExamDesign
    from .scoring import theta_for_raw_score
    from .simulation.recovery import forms_mask

    pool_dir = Path(pool_dir)
    cfg = load_pool_config(pool_dir)
    items = load_authored_items(pool_dir / "items.toml", cfg.blueprint, cfg.bank.n_options)
    spec = cfg.field_test
    rng = as_generator(spec.seed)
    n = len(items)
    # generating parameters
    level_mean = np.array([spec.b_mean[it.cognitive_level] for it in items]) + spec.b_shift
    a_true = np.exp(rng.normal(spec.log_a_mean, spec.log_a_sd, n))
    b_true = rng.normal(level_mean, spec.b_sd)
    c_true = rng.beta(*spec.c_beta, n)
    # field-test design and responses
    forms = forms_mask(np.array([it.status == "operational" for it in items]), spec.forms, spec.anchor_items, rng)
    n_cand = spec.forms * spec.candidates_per_form
    form_of = np.repeat(np.arange(spec.forms), spec.candidates_per_form)
    theta = rng.normal(0.0, 1.0, n_cand)
    z = a_true[None, :] * (theta[:, None] - b_true[None, :])
    p = c_true + (1.0 - c_true) / (1.0 + np.exp(-z))
    x = (rng.random((n_cand, n)) < p).astype(float)
    x[~forms[form_of]] = np.nan
    ids = [it.id for it in items]
    result = calibrate(x, model=cfg.calibration.model, quadrature=cfg.calibration.quadrature,
                       priors=cfg.calibration.priors, item_ids=ids, progress=progress, name=cfg.bank.name)
    if not result.converged:
        raise BankValidationError([f"the field-test calibration did not converge ({result.n_iter} cycles)"],
                                  str(pool_dir))
    dec = cfg.calibration.decimals
    answered = (~np.isnan(x)).sum(axis=0)
    prior_txt = f", priors {cfg.calibration.priors}" if cfg.calibration.priors else ""
    records = []
    for k, it in enumerate(items):
        par = result.item_parameters(it.id)
        prov = Provenance(
            method=f"MML-EM {cfg.calibration.model.upper()} ({cfg.calibration.quadrature} quadrature points{prior_txt})",
            software="adaptive (calibration/calibrate_item_pools.py)", sample_size=int(answered[k]),
            date=spec.date,
            note=(f"simulated field test: {spec.forms} spiraled forms, {spec.anchor_items} anchor items, "
                  f"{n_cand} simulated candidates, seed {spec.seed}; parameters rounded to {dec} decimals"),
        )
        rec = {"id": it.id, "model": cfg.calibration.model, "a": round(par["a"], dec), "b": round(par["b"], dec),
               "domain": it.domain, "subdomain": it.subdomain, "code_set": it.code_set,
               "code_set_year": it.code_set_year, "status": it.status, "enemies": list(it.enemies),
               "provenance": prov,
               "content": {"stem": it.stem, "options": list(it.options), "key": it.key,
                           "rationale": it.rationale, "cognitive_level": it.cognitive_level}}
        if cfg.calibration.model == "3pl":
            rec["c"] = round(par["c"], dec)
        records.append(rec)
    bank = ItemBank(name=cfg.bank.name, version=cfg.bank.version, description=cfg.bank.description,
                    blueprint=cfg.blueprint, items=records)
    # pass standard
    std = cfg.standard
    form = reference_form(bank, cfg.blueprint, std.form_length)
    arrays = bank.compile().subset([bank.index[i] for i in form])
    theta_cut = round(float(theta_for_raw_score(arrays, std.raw)), 4)
    info_at_cut = float(arrays.information(np.array([theta_cut])).sum())
    standard = {
        "method": std.method, "source": std.source, "reference_form": form, "form_length": std.form_length,
        "raw_cut": std.raw, "percent_cut": round(100.0 * std.raw / std.form_length, 4), "theta_cut": theta_cut,
        "sem_at_cut": round(1.0 / np.sqrt(info_at_cut), 4),
        "scale": {"theta_cut": theta_cut, "scaled_cut": std.scaled_cut, "slope": std.slope,
                  "minimum": std.minimum, "maximum": std.maximum},
    }
    design = ExamDesign.from_dict({**cfg.design, "scale": standard["scale"]}, source=str(pool_dir / "pool.toml"))
    truth = {i: {"a": float(a_true[k]), "b": float(b_true[k]), "c": float(c_true[k])} for k, i in enumerate(ids)}
    return PoolBuild(bank=bank, design=design, standard=standard, true_parameters=truth, responses=x,
                     calibration=result)


def write_pool(build: PoolBuild, out_dir: str | Path) -> list[Path]:
    """Write ``bank.json``, ``design.json`` and ``standard.json`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "bank.json", out / "design.json", out / "standard.json"]
    build.bank.to_json(paths[0])
    paths[1].write_text(build.design.model_dump_json(indent=2) + "\n", encoding="utf-8")
    paths[2].write_text(json.dumps(build.standard, indent=2) + "\n", encoding="utf-8")
    return paths


# ---------------------------------------------------------------------------------------------- checks
def _pool_dir(path: str | Path) -> Path | None:
    """The pool directory when ``path`` is one (design.json and standard.json live there)."""
    p = Path(path)
    return p if p.is_dir() else None


def check_pool(path: str | Path) -> tuple[ItemBank | None, list[str]]:
    """Every problem of a bank file or pool directory, one line each (empty list: the bank is sound).

    * the bank itself: each item's fields (ids, parameters, models), duplicate ids, enemies that do
      not exist, domains outside the blueprint -- all reported, by item and field;
    * items with content: the key among the options, distinct options, a rationale, and the
      code set's year when a code set is named;
    * the blueprint: every domain has operational items;
    * in a pool directory, ``design.json``: the design can be met with this bank (lengths, blueprint
      and enemies, pretest count), and ``standard.json``: its reference form is in the bank and
      its θ cut is the one the bank's parameters give.
    """
    pool_dir = _pool_dir(path)
    try:
        bank = ItemBank.load(path)
    except BankValidationError as err:
        return None, list(err.problems)
    problems = []
    for pos, it in enumerate(bank.items):
        where = f"item {it.id!r} (position {pos}), "
        if it.code_set is not None and it.code_set_year is None:
            problems.append(f"{where}field 'code_set_year': the code set {it.code_set!r} needs the year of the "
                            "edition the item was written against")
        c = it.content
        if c is not None and c.options:
            if c.key is None:
                problems.append(f"{where}field 'content.key': an item with options needs a key")
            if not c.rationale:
                problems.append(f"{where}field 'content.rationale': missing; give a one-line rationale for the key")
    if bank.blueprint is not None:
        for d in bank.blueprint.domains:
            if not any(it.domain == d.name and it.status == "operational" for it in bank.items):
                problems.append(f"blueprint, domain {d.name!r}: no operational item in the bank")
    if pool_dir is not None:
        problems += _check_design_and_standard(bank, pool_dir)
    return bank, problems


def _check_design_and_standard(bank: ItemBank, pool_dir: Path) -> list[str]:
    from .cat.design import ExamDesign
    from .cat.engine import CatEngine
    from .exceptions import DesignError
    from .scoring import theta_for_raw_score

    problems = []
    design = None
    if (pool_dir / "design.json").exists():
        try:
            design = ExamDesign.load(pool_dir / "design.json")
            CatEngine(design, bank)
        except DesignError as err:
            lines = [ln.strip() for ln in str(err).splitlines()]
            listed = [ln.removeprefix("- ") for ln in lines if ln.startswith("- ")]
            problems += [f"design.json: {ln}" for ln in (listed or lines[:1])]
    std_path = pool_dir / "standard.json"
    if std_path.exists():
        std = json.loads(std_path.read_text(encoding="utf-8"))
        form = std.get("reference_form", [])
        missing = [i for i in form if i not in bank.index]
        if missing:
            problems.append(f"standard.json, field 'reference_form': items {missing} are not in the bank")
        elif form:
            arrays = bank.compile().subset([bank.index[i] for i in form])
            theta = round(float(theta_for_raw_score(arrays, std["raw_cut"])), 4)
            if abs(theta - std["theta_cut"]) > 1e-4:
                problems.append(f"standard.json, field 'theta_cut': {std['theta_cut']} but the bank's parameters give "
                                f"{theta} for {std['raw_cut']} of {len(form)}; rerun the pool's calibration script")
            if design is not None and design.theta_cut is not None and abs(design.theta_cut - std["theta_cut"]) > 1e-9:
                problems.append(f"design.json, field 'scale.theta_cut': {design.theta_cut} differs from the standard's "
                                f"{std['theta_cut']}")
    return problems


@dataclass(frozen=True)
class PoolInfo:
    """Counts and parameter summaries of a bank (``adaptive bank info``)."""

    bank: ItemBank
    counts: dict[str, dict[str, int]]
    theta: np.ndarray
    information: np.ndarray
    reference_information: np.ndarray | None
    theta_cut: float | None

    def table(self) -> str:
        statuses = ("operational", "pretest", "retired")
        target = {d.name: d.proportion for d in self.bank.blueprint.domains} if self.bank.blueprint else {}
        rows = [["domain", *statuses, "total", "target"]]
        for dom, c in self.counts.items():
            p = target.get(dom)
            rows.append([dom, *(str(c.get(s, 0)) for s in statuses), str(sum(c.values())),
                         "-" if p is None else f"{p:.0%}"])
        tot = {s: sum(c.get(s, 0) for c in self.counts.values()) for s in statuses}
        rows.append(["all", *(str(tot[s]) for s in statuses), str(len(self.bank)), ""])
        w = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
        lines = ["  ".join(v.ljust(w[k]) if k == 0 else v.rjust(w[k]) for k, v in enumerate(r)) for r in rows]
        lines.insert(1, "  ".join("-" * x for x in w))
        return "\n".join(lines)

    def parameter_summary(self) -> str:
        arr = self.bank.compile()
        lines = []
        for s in ("operational", "pretest"):
            sel = np.array([it.status == s for it in self.bank.items])
            if not sel.any():
                continue
            parts = [f"{s} ({int(sel.sum())}):"]
            for name, v in (("a", arr.a[sel]), ("b", arr.thresholds[sel, 0]), ("c", arr.c[sel])):
                parts.append(f"{name} mean {np.mean(v):.2f} [{np.min(v):.2f}, {np.max(v):.2f}]")
            lines.append("  ".join(parts))
        k = int(np.argmax(self.information))
        lines.append(f"operational pool information peaks at theta {self.theta[k]:.2f} ({self.information[k]:.1f})")
        if self.theta_cut is not None:
            at = float(np.interp(self.theta_cut, self.theta, self.information))
            lines.append(f"at the theta cut {self.theta_cut:.4f}: pool information {at:.1f}")
        return "\n".join(lines)

    def plot(self, path: str | Path) -> Path:
        """Draw the test information curve(s) to a PNG (needs matplotlib: ``pip install adaptive-cat[plots]``)."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:  # pragma: no cover - depends on the environment
            raise BankValidationError(["drawing the information curve needs matplotlib: pip install "
                                       "'adaptive-cat[plots]'"]) from None
        fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
        ax.plot(self.theta, self.information, label="operational pool", color="tab:blue")
        if self.reference_information is not None:
            ax.plot(self.theta, self.reference_information, label="reference form", color="tab:orange")
        if self.theta_cut is not None:
            ax.axvline(self.theta_cut, color="tab:red", linestyle="--", label=f"θ cut {self.theta_cut:.3f}")
        ax.set_xlabel("θ")
        ax.set_ylabel("test information")
        ax.set_title(f"{self.bank.name} v{self.bank.version}: test information ({len(self.bank)} items)")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = Path(path)
        fig.savefig(path, format="png")
        plt.close(fig)
        return path


def pool_info(path: str | Path) -> PoolInfo:
    """Counts by domain and status, and information curves, of a bank file or pool directory."""
    pool_dir = _pool_dir(path)
    bank = ItemBank.load(path)
    domains = list(bank.blueprint.names) if bank.blueprint else []
    domains += sorted({it.domain or "(none)" for it in bank.items} - set(domains))
    counts = {d: {} for d in domains}
    for it in bank.items:
        c = counts[it.domain or "(none)"]
        c[it.status] = c.get(it.status, 0) + 1
    theta = np.linspace(-4.0, 4.0, 161)
    arr = bank.compile()
    info = arr.information(theta)  # (T, I)
    operational = np.array([it.status == "operational" for it in bank.items])
    ref_info = cut = None
    if pool_dir is not None and (pool_dir / "standard.json").exists():
        std = json.loads((pool_dir / "standard.json").read_text(encoding="utf-8"))
        idx = [bank.index[i] for i in std.get("reference_form", []) if i in bank.index]
        ref_info = info[:, idx].sum(axis=1) if idx else None
        cut = std.get("theta_cut")
    elif pool_dir is not None and (pool_dir / "design.json").exists():
        from .cat.design import ExamDesign

        cut = ExamDesign.load(pool_dir / "design.json").theta_cut
    return PoolInfo(bank=bank, counts=counts, theta=theta, information=info[:, operational].sum(axis=1),
                    reference_information=ref_info, theta_cut=cut)
