"""The subscores a candidate's report gives, checked on simulees whose domain abilities are known.

The exam runs as delivered: the unidimensional CAT on the bank's own parameters selects, scores and decides; the
report's subscores come from the bank's subscore model (:mod:`adaptive.bank.subscores`, :mod:`adaptive.cat.report`).
Simulees have domain abilities ``θ ~ N(0, Σ)`` (the subscore model's latent covariance) and answer every scored item
from the subscore model (its M3PL/M2PL items); items outside it (pretest) from the bank's model at the ability of
their domain. The engine reads each answer from that full matrix (post hoc), so the CAT adapts to the simulees'
multidimensional answers as it would to real candidates'.

Per domain: bias and RMSE of the subscore; the mean reliability the reports state (``1 - SE²/σ²``) next to the
empirical one (the squared correlation of subscore and true domain ability, Haberman's PRMSE); the share of the
reports whose interval ``subscore ± 1.96 SE`` holds the true domain ability (0.95 when the reported SEs are
honest); and, for comparison, the PRMSE of the total θ̂ and of the domain's own answers alone as predictors of the
domain ability (Haberman's criterion: a subscore adds value when its PRMSE exceeds the total score's).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..cat._streams import batch_keys
from ..cat.design import ExamDesign
from ..cat.engine import CatEngine
from ..cat.report import domain_performance
from ..exceptions import DesignError
from ..irt.linear import log_prob
from ..tables import Table
from .subscores import prmse

__all__ = ["ReportedSubscores", "reported_subscores"]


@dataclass(frozen=True)
class ReportedSubscores(Table):
    """One row per domain (see the module docstring)."""

    key = "domain"
    domain: tuple
    mean_items: np.ndarray
    bias: np.ndarray
    rmse: np.ndarray
    reported_reliability: np.ndarray
    empirical_reliability: np.ndarray
    coverage: np.ndarray
    prmse_total: np.ndarray
    prmse_domain_alone: np.ndarray
    n_simulees: int = 0
    mean_length: float = 0.0

    def columns(self) -> dict:
        return {k: getattr(self, k) for k in ("domain", "mean_items", "bias", "rmse", "reported_reliability",
                                              "empirical_reliability", "coverage", "prmse_total",
                                              "prmse_domain_alone")}


def _answers(bank, sub, theta, rng) -> np.ndarray:
    """Every simulee's answer to every item of ``bank`` (see the module docstring)."""
    arr = bank.compile()
    n = theta.shape[0]
    probs = np.empty((n, len(bank), arr.max_categories))
    col = {iid: j for j, iid in enumerate(sub.item_ids)}
    inside = np.array([iid in col for iid in bank.ids])
    idx = np.flatnonzero(inside)
    if idx.size:
        lp = log_prob(sub.kind[[col[bank.ids[j]] for j in idx]], sub.n_cat[[col[bank.ids[j]] for j in idx]],
                      sub.phi[[col[bank.ids[j]] for j in idx]], theta)                 # (I, N, C)
        probs[:, idx, :lp.shape[2]] = np.exp(lp).transpose(1, 0, 2)
        probs[:, idx, lp.shape[2]:] = 0.0
    factor = {f: q for q, f in enumerate(sub.factor_names)}
    for j in np.flatnonzero(~inside):  # pretest items: the bank's model at the ability of the item's domain
        q = factor.get(bank.items[j].domain or "", None)
        t = theta[:, q] if q is not None else theta.mean(axis=1)
        p = arr.subset([j]).prob(t)[:, 0, :]
        probs[:, j, :p.shape[1]] = p
        probs[:, j, p.shape[1]:] = 0.0
    cum = np.cumsum(probs, axis=2)[:, :, :-1]
    u = rng.random((n, len(bank)))
    return (u[:, :, None] > cum).sum(axis=2).astype(float)


def reported_subscores(design: ExamDesign, bank, n: int = 2000, seed: int = 0) -> ReportedSubscores:
    """Run the study (see the module docstring) on ``bank`` (which must carry a subscore model)."""
    if bank.subscores is None:
        raise DesignError("the bank has no subscore model: attach one with bank.with_subscores(fit.bank) or a pool "
                          "directory's subscores.json")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= 10_000_000:
        raise DesignError(f"n={n!r}: give a whole number of simulees from 1 to 10,000,000")
    sub = bank.subscores.bank
    rng = np.random.default_rng(seed)
    theta = rng.multivariate_normal(sub.latent_mean, sub.latent_cov, size=n)
    answers = _answers(bank, sub, theta, rng)
    engine = CatEngine(design, bank)
    state = engine.start(batch_keys(seed, n))
    while state.active.any():
        items = engine.select(state)
        rows = np.flatnonzero(items >= 0)
        if rows.size == 0:
            break
        engine.record(state, rows, items[rows], answers[rows, items[rows]], None)
    total = engine.result(state).theta
    report = domain_performance(engine, state)
    keep = [j for j, d in enumerate(report[0]) if d.domain in sub.factor_names]  # domains with a subscore
    names = [report[0][j].domain for j in keep]
    q = np.array([list(sub.factor_names).index(nm) for nm in names])
    truth = theta[:, q]

    def grab(attr):
        return np.array([[np.nan if getattr(r[j], attr) is None else getattr(r[j], attr) for j in keep]
                         for r in report])

    est, se, rel, alone, items = grab("subscore"), grab("subscore_se"), grab("reliability"), grab("theta"), \
        grab("n_items")
    err = est - truth
    has = ~np.isnan(alone)
    return ReportedSubscores(
        domain=tuple(names), mean_items=items.mean(axis=0), bias=err.mean(axis=0),
        rmse=np.sqrt((err ** 2).mean(axis=0)), reported_reliability=rel.mean(axis=0),
        empirical_reliability=np.array([prmse(est[:, k], truth[:, k]) for k in range(len(names))]),
        coverage=(np.abs(err) <= 1.96 * se).mean(axis=0),
        prmse_total=np.array([prmse(total, truth[:, k]) for k in range(len(names))]),
        prmse_domain_alone=np.array([prmse(alone[has[:, k], k], truth[has[:, k], k]) if has[:, k].sum() > 2
                                     else np.nan for k in range(len(names))]),
        n_simulees=n, mean_length=float(state.n_given.mean()))
