"""Simulation studies: a condition × replication grid of simulees run through the batch engine.

A study is described by a :class:`StudyConfig` (TOML; see ``simulations/cmcs.toml``): the scoring
bank, optionally a different "true" bank the answers come from, the exam design, the simulees
(a normal population, or a grid of fixed θ values for conditional studies), replications, a chunk
size, and a sweep: named design changes whose Cartesian product gives the conditions.

Reproducibility (DESIGN.md convention 9): condition ``c``, replication ``r`` of a study with seed
``s`` draws everything from ``SeedSequence(s, spawn_key=(c, r))``: the true θs first, then one
64-bit session key per simulee. Simulees are processed in chunks of ``chunk_size`` that take their
slice of those arrays, so results do not depend on the order in which cells run or on how many
workers run them (bit for bit: a cell is one computation on one worker), nor on the chunk size
(the same items, lengths and decisions; θ̂ and SE equal up to the last-bit rounding of BLAS
products over batches of another size, about 1e-15). Exception: ``exposure.max_rate`` reacts to the
exposure counts of the sessions run together, i.e. the chunk.

Memory: a chunk's full item sequences are reduced to per-simulee summaries (true θ, θ̂, SE, length,
decision, blueprint conformance: 41 bytes) and exposure counts before the next chunk runs, so a
1,000,000-simulee cell needs about 40 MB besides one chunk's working set.
"""

from __future__ import annotations

import itertools
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..bank import ItemBank
from ..cat.constraints import BlueprintBounds
from ..cat.design import ExamDesign
from ..cat.engine import CatEngine
from ..cat.posthoc import simulate_cat
from ..exceptions import DesignError
from ..fielderrors import problem_lines
from ..textfiles import SETTINGS_MAX_MB, read_text
from .metrics import Classification, classification, domain_counts

__all__ = [
    "CellResult",
    "Condition",
    "StudyConfig",
    "StudyResult",
    "cell_seed_sequence",
    "load_study",
    "run_cell",
    "run_study",
]

_STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
_DECISIONS = np.array(["no decision", "fail", "pass"])


class BankSource(BaseModel):
    """A bank: a file or pool directory (``path``, relative to the study file), or a synthetic bank."""

    model_config = _STRICT
    path: str | None = None
    synthetic: dict | None = Field(None, description="arguments of adaptive.synthetic.synthetic_bank, e.g. "
                                   "{items = 2000, model = '3pl', pool = 'cmcs', pretest = 0.1, seed = 1}")

    @model_validator(mode="after")
    def _check(self) -> BankSource:
        if (self.path is None) == (self.synthetic is None):
            raise ValueError("give exactly one of 'path' and 'synthetic'")
        return self


#: the most simulees one condition may have: results (θ̂, SE, item sequences) stay in memory, about 40 MB
#: per million simulees besides one chunk's working set
SIMULEES_MAX = 100_000_000


class SimuleeSpec(BaseModel):
    """Who takes the test: ``n`` simulees from N(mean, sd), or ``n`` at each value of ``grid``."""

    model_config = _STRICT
    n: int = Field(1000, ge=1, le=SIMULEES_MAX, description="simulees (per grid point when grid is given)")
    distribution: Literal["normal", "grid"] = "normal"
    mean: float = Field(0.0, ge=-10.0, le=10.0)
    sd: float = Field(1.0, gt=0.0, le=10.0)
    grid: list[Annotated[float, Field(ge=-10.0, le=10.0)]] = Field(default_factory=list, max_length=2001)
    replications: int = Field(1, ge=1, le=10_000)
    chunk_size: int = Field(20000, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _check(self) -> SimuleeSpec:
        if self.distribution == "grid" and not self.grid:
            raise ValueError("distribution 'grid' needs grid = [θ values]")
        total = self.n * max(len(self.grid), 1) * self.replications
        if total > SIMULEES_MAX:
            raise ValueError(f"{total:,} simulees per condition (n x grid points x replications) is more than "
                             f"{SIMULEES_MAX:,}; each keeps its results in memory -- split the study")
        return self


class ReportSpec(BaseModel):
    model_config = _STRICT
    theta_bins: list[float] = Field(default_factory=lambda: [float(x) for x in np.arange(-3.0, 3.01, 0.5)],
                                    description="edges of the θ bins of the conditional metrics")
    plots: bool = True


class StudyConfig(BaseModel):
    """A simulation study (see the module docstring)."""

    model_config = _STRICT
    name: str = "study"
    seed: int = 0
    bank: BankSource
    true_bank: BankSource | None = None
    design: dict = Field(description="{path = 'design.json'} or ExamDesign fields (with path: changes to it)")
    simulees: SimuleeSpec = SimuleeSpec()
    sweep: dict[str, list] = Field(default_factory=dict,
                                   description="dotted design field -> values, e.g. {'max_length' = [40, 60]}")
    report: ReportSpec = ReportSpec()
    base_dir: str = Field(".", description="where relative paths point (set by load_study to the file's folder)")


def load_study(path: str | Path) -> StudyConfig:
    """Read a study TOML; relative paths in it are relative to the file's folder."""
    path = Path(path)
    try:
        data = tomllib.loads(read_text(path, "study", DesignError, max_mb=SETTINGS_MAX_MB))
    except tomllib.TOMLDecodeError as err:
        raise DesignError(f"study {str(path)!r} is not valid TOML: {err}") from None
    data.setdefault("base_dir", str(path.resolve().parent))
    try:
        return StudyConfig.model_validate(data)
    except ValidationError as err:
        lines = problem_lines(err, StudyConfig)
        raise DesignError(f"study {str(path)!r}: {len(lines)} problem(s):\n  - " + "\n  - ".join(lines)) from None


def _set_dotted(d: dict, dotted: str, value) -> dict:
    out = json.loads(json.dumps(d))
    node = out
    keys = dotted.split(".")
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise DesignError(f"sweep field {dotted!r}: {k!r} is not a table of the design")
    node[keys[-1]] = value
    return out


@dataclass(frozen=True)
class Condition:
    """One cell of the sweep: its index, its settings and the design they give."""

    index: int
    settings: dict
    design: ExamDesign

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.settings.items()) or "base"


def _resolve_bank(src: BankSource, base: Path) -> ItemBank:
    if src.path is not None:
        p = Path(src.path)
        return ItemBank.load(p if p.is_absolute() else base / p)
    from ..synthetic import synthetic_bank

    args = dict(src.synthetic or {})
    n = int(args.pop("items", 1000))
    pool = args.pop("pool", None)
    if pool is not None:
        from ..resources import pool_path

        args["blueprint"] = ItemBank.from_json(pool_path(pool) / "bank.json").blueprint
    args["rng"] = int(args.pop("seed", 0))
    return synthetic_bank(n, **args)


def _base_design(cfg: StudyConfig) -> dict:
    d = dict(cfg.design)
    path = d.pop("path", None)
    if path is None:
        return d
    p = Path(path)
    p = p if p.is_absolute() else Path(cfg.base_dir) / p
    if p.is_dir():
        p = p / "design.json"
    base = ExamDesign.load(p).model_dump(mode="json")
    for k, v in d.items():
        base = _set_dotted(base, k, v) if "." in k else {**base, k: v}
    return base


def conditions(cfg: StudyConfig) -> list[Condition]:
    """The sweep's conditions, in a fixed order (the last sweep field varies fastest)."""
    base = _base_design(cfg)
    names = list(cfg.sweep)
    out = []
    for k, values in enumerate(itertools.product(*(cfg.sweep[n] for n in names))):
        d = base
        for n, v in zip(names, values):
            d = _set_dotted(d, n, v)
        settings = dict(zip(names, values))
        out.append(Condition(k, settings, ExamDesign.from_dict(d, source=f"study {cfg.name!r}, condition {settings}")))
    return out


def cell_seed_sequence(seed: int, condition: int, replication: int) -> np.random.SeedSequence:
    """The random source of one cell: independent of every other cell and of the worker running it."""
    return np.random.SeedSequence(seed, spawn_key=(condition, replication))


@dataclass(frozen=True)
class CellResult:
    """Per-simulee summaries of one condition × replication (arrays over simulees) and exposure counts."""

    condition: int
    replication: int
    true_theta: np.ndarray
    theta: np.ndarray
    se: np.ndarray
    n_items: np.ndarray
    decision: np.ndarray  # int8: -1 no decision, 0 fail, 1 pass
    blueprint_ok: np.ndarray
    exposure_counts: np.ndarray  # scored administrations per bank item
    pretest_counts: np.ndarray
    seconds: float = 0.0

    @property
    def decisions(self) -> np.ndarray:
        return _DECISIONS[self.decision.astype(int) + 1]

    def same_as(self, other: CellResult) -> bool:
        """Bit-for-bit equality of every array (timing aside)."""
        names = ("true_theta", "theta", "se", "n_items", "decision", "blueprint_ok", "exposure_counts",
                 "pretest_counts")
        return all(np.array_equal(getattr(self, n), getattr(other, n), equal_nan=getattr(self, n).dtype.kind == "f")
                   for n in names)


def _true_thetas(spec: SimuleeSpec, rng: np.random.Generator) -> np.ndarray:
    if spec.distribution == "grid":
        return np.repeat(np.asarray(spec.grid, dtype=float), spec.n)
    return rng.normal(spec.mean, spec.sd, spec.n)


def run_cell(design: ExamDesign, bank: ItemBank, simulees: SimuleeSpec, seed: int, condition: int = 0,
             replication: int = 0, true_bank: ItemBank | None = None, engine: CatEngine | None = None,
             on_chunk=None) -> CellResult:
    """Run one condition × replication in chunks and reduce it to per-simulee summaries.

    ``on_chunk(n)`` is called after each chunk with the number of simulees it held.
    """
    import time

    started = time.perf_counter()
    ss = cell_seed_sequence(seed, condition, replication)
    theta_ss, key_ss = ss.spawn(2)
    true_theta = _true_thetas(simulees, np.random.default_rng(theta_ss))
    n = true_theta.size
    keys = key_ss.generate_state(n, np.uint64)
    engine = engine or CatEngine(design, bank)
    n_items = len(bank)
    bp = None
    if bank.blueprint is not None or design.content.blueprint is not None:
        blueprint = design.content.blueprint or bank.blueprint
        assert blueprint is not None
        bp = BlueprintBounds.build(blueprint, [it.domain for it in bank.items])
    theta, se = np.empty(n), np.empty(n)
    length, decision = np.empty(n, np.int32), np.empty(n, np.int8)
    ok = np.ones(n, bool)
    exposure = np.zeros(n_items, np.int64)
    pretest = np.zeros(n_items, np.int64)
    step = simulees.chunk_size
    for lo in range(0, n, step):
        hi = min(lo + step, n)
        res = simulate_cat(design, bank, thetas=true_theta[lo:hi], keys=keys[lo:hi], engine=engine,
                           true_bank=true_bank)
        theta[lo:hi], se[lo:hi], length[lo:hi] = res.theta, res.se, res.n_items
        decision[lo:hi] = np.select([res.decision == "pass", res.decision == "fail"], [1, 0], -1)
        seq = res.sequence
        given = seq >= 0
        exposure += np.bincount(seq[given & res.scored], minlength=n_items)
        pretest += np.bincount(seq[given & ~res.scored], minlength=n_items)
        if bp is not None:
            counts = domain_counts(res, bp.item_domain, bp.n_domains)
            b_lo, b_hi = bp.bounds(res.n_items)
            ok[lo:hi] = np.all((counts >= b_lo) & (counts <= b_hi), axis=1)
        if on_chunk is not None:
            on_chunk(hi - lo)
    return CellResult(condition, replication, true_theta, theta, se, length, decision, ok, exposure, pretest,
                      time.perf_counter() - started)


# ---------------------------------------------------------------------------------------------- summaries
@dataclass(frozen=True)
class StudyResult:
    """All cells of a study with their metrics; tidy tables for CSV/JSON and the report."""

    config: StudyConfig
    conditions: list[Condition]
    cells: list[CellResult]
    bank: ItemBank
    metrics: list[dict] = field(default_factory=list)       # one row per cell
    conditional: list[dict] = field(default_factory=list)   # one row per cell x θ bin
    exposure: list[dict] = field(default_factory=list)      # one row per condition x item
    lengths: list[dict] = field(default_factory=list)       # one row per condition x length

    def cells_of(self, condition: int) -> list[CellResult]:
        return [c for c in self.cells if c.condition == condition]


def summarize_cell(cell: CellResult, theta_cut: float | None, bins, n_items: int) -> tuple[dict, list[dict]]:
    """The cell's metrics (precision, length, exposure, classification) and its conditional rows."""
    from .metrics import precision

    prec = precision(cell.true_theta, cell.theta, cell.se)
    n = cell.theta.size
    rates = cell.exposure_counts / n
    mean_len = float(cell.n_items.mean())
    expected = mean_len / n_items
    row = {"condition": cell.condition, "replication": cell.replication, "n": n, **prec,
           "mean_length": mean_len, "sd_length": float(cell.n_items.std()), "min_length": int(cell.n_items.min()),
           "max_length": int(cell.n_items.max()),
           "max_exposure": float(rates.max()), "unused_items": float(np.mean(cell.exposure_counts == 0)),
           "exposure_chi2": float(np.sum((rates - expected) ** 2) / expected) if expected > 0 else float("nan"),
           "overlap": float((n * np.sum(rates**2) / mean_len - 1.0) / (n - 1)) if n > 1 else float("nan"),
           "blueprint_conformance": float(cell.blueprint_ok.mean()), "seconds": cell.seconds}
    if theta_cut is not None:
        c: Classification = classification(cell.decisions, cell.true_theta, theta_cut)
        row.update(pass_rate=c.pass_rate, true_pass_rate=c.true_pass_rate, accuracy=c.accuracy,
                   false_pass=c.false_pass, false_fail=c.false_fail, no_decision=c.no_decision)
        from ..scoring.classification import rudner_from_estimates

        # what an exam program can compute without knowing θ: Rudner's accuracy and consistency from θ̂ and SE
        est = rudner_from_estimates(cell.theta, cell.se, theta_cut)
        row.update(rudner_accuracy=est.accuracy, rudner_consistency=est.consistency)
    edges = np.asarray(bins, dtype=float)
    which = np.digitize(cell.true_theta, edges)  # 0: below the first edge, len(edges): above the last
    cond_rows = []
    err = cell.theta - cell.true_theta
    for b in np.unique(which):
        sel = which == b
        lo = -np.inf if b == 0 else edges[b - 1]
        hi = np.inf if b == edges.size else edges[b]
        r = {"condition": cell.condition, "replication": cell.replication, "bin_low": float(lo), "bin_high": float(hi),
             "theta_mean": float(cell.true_theta[sel].mean()), "n": int(sel.sum()),
             "bias": float(err[sel].mean()), "rmse": float(np.sqrt(np.mean(err[sel] ** 2))),
             "mean_se": float(cell.se[sel].mean()), "mean_length": float(cell.n_items[sel].mean())}
        if theta_cut is not None:
            r["p_pass"] = float(np.mean(cell.decision[sel] == 1))
        cond_rows.append(r)
    return row, cond_rows


def run_study(cfg: StudyConfig | str | Path, *, client=None, progress=None) -> StudyResult:
    """Run every condition × replication (in-process, or on a ``dask.distributed.Client``) and summarize.

    Results are identical whichever way the cells run (see the module docstring).
    ``progress``: callable ``(done, total)`` counting simulees, called after each chunk in-process
    and after each cell on Dask.
    """
    if not isinstance(cfg, StudyConfig):
        cfg = load_study(cfg)
    base = Path(cfg.base_dir)
    bank = _resolve_bank(cfg.bank, base)
    true_bank = _resolve_bank(cfg.true_bank, base) if cfg.true_bank is not None else None
    conds = conditions(cfg)
    for c in conds:
        CatEngine(c.design, bank)  # refuse a design the bank cannot meet before anything runs
    tasks = [(c.index, r) for c in conds for r in range(cfg.simulees.replications)]
    per_cell = cfg.simulees.n * (len(cfg.simulees.grid) if cfg.simulees.distribution == "grid" else 1)
    total = len(tasks) * per_cell
    done_simulees = 0

    def advance(n):
        nonlocal done_simulees
        done_simulees += n
        if progress:
            progress(done_simulees, total)

    if client is None:
        cells = []
        engines: dict[int, CatEngine] = {}
        for ci, r in tasks:
            eng = engines.setdefault(ci, CatEngine(conds[ci].design, bank))
            cells.append(run_cell(conds[ci].design, bank, cfg.simulees, cfg.seed, ci, r, true_bank, eng,
                                  on_chunk=advance))
    else:
        from dask.distributed import as_completed

        bank_f = client.scatter(bank, broadcast=True)
        true_f = client.scatter(true_bank, broadcast=True) if true_bank is not None else None
        futures = [client.submit(run_cell, conds[ci].design, bank_f, cfg.simulees, cfg.seed, ci, r, true_f,
                                 pure=False) for ci, r in tasks]
        done = {}
        for fut in as_completed(futures):
            cell = fut.result()
            done[(cell.condition, cell.replication)] = cell
            advance(cell.true_theta.size)
        cells = [done[t] for t in tasks]
    return summarize(cfg, conds, cells, bank)


def summarize(cfg: StudyConfig, conds: list[Condition], cells: list[CellResult], bank: ItemBank) -> StudyResult:
    metrics, conditional, exposure, lengths = [], [], [], []
    for cell in cells:
        cond = conds[cell.condition]
        row, crow = summarize_cell(cell, cond.design.theta_cut, cfg.report.theta_bins, len(bank))
        metrics.append({**cond.settings, **row})
        conditional += [{**cond.settings, **r} for r in crow]
    for cond in conds:
        mine = [c for c in cells if c.condition == cond.index]
        n = sum(c.theta.size for c in mine)
        counts = np.sum([c.exposure_counts for c in mine], axis=0)
        pre = np.sum([c.pretest_counts for c in mine], axis=0)
        for i, it in enumerate(bank.items):
            exposure.append({**cond.settings, "condition": cond.index, "item": it.id, "status": it.status,
                             "domain": it.domain, "rate": float(counts[i] / n), "pretest_rate": float(pre[i] / n)})
        ls, cnt = np.unique(np.concatenate([c.n_items for c in mine]), return_counts=True)
        lengths += [{**cond.settings, "condition": cond.index, "length": int(v), "count": int(k)}
                    for v, k in zip(ls, cnt)]
    return StudyResult(cfg, conds, cells, bank, metrics, conditional, exposure, lengths)
