"""Build a pool: simulate its field test, calibrate, derive the pass standard and the exam design; write the files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .._random import as_generator
from ..bank import Blueprint, ItemBank, Provenance
from ..exceptions import BankValidationError
from ..irt import dichotomous
from ..scoring.standard import PassStandard

if TYPE_CHECKING:
    from ..calibration.result import CalibrationResult
    from ..cat.design import ExamDesign
from ..synthetic import allocate
from .config import load_authored_items, load_pool_config

__all__ = ["PoolBuild", "build_pool", "reference_form", "write_pool"]


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
    design: ExamDesign
    standard: PassStandard
    true_parameters: dict[str, dict[str, float]]
    responses: np.ndarray
    calibration: CalibrationResult

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
    from ..calibration import calibrate
    from ..cat.design import ExamDesign
    from ..simulation.recovery import forms_mask

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
    p_right = dichotomous.prob(theta, a_true, b_true, c_true)[..., 1]  # (N, I): the 3PL from the model layer
    x = (rng.random((n_cand, n)) < p_right).astype(float)
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
            method=(f"MML-EM {cfg.calibration.model.upper()} ({cfg.calibration.quadrature} quadrature "
                    f"points{prior_txt})"),
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
                           "rationale": it.rationale, "cognitive_level": it.cognitive_level,
                           **({} if it.shuffle else {"shuffle": False})}}
        if cfg.calibration.model == "3pl":
            rec["c"] = round(par["c"], dec)
        records.append(rec)
    bank = ItemBank(name=cfg.bank.name, version=cfg.bank.version, description=cfg.bank.description,
                    blueprint=cfg.blueprint, items=records)
    # pass standard
    std = cfg.standard
    form = reference_form(bank, cfg.blueprint, std.form_length)
    standard = PassStandard.derive(bank, form, raw_cut=std.raw, method=std.method, source=std.source,
                                   scaled_cut=std.scaled_cut, slope=std.slope, minimum=std.minimum, maximum=std.maximum)
    scale = standard.scale.model_dump(exclude_defaults=True)
    design = ExamDesign.from_dict({**cfg.design, "scale": {"theta_cut": standard.theta_cut, **scale}},
                                  source=str(pool_dir / "pool.toml"))
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
    build.standard.to_json(paths[2])
    return paths
