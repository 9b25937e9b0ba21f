"""Performance by content domain: the part of a score report a candidate can act on.

For each content domain of the bank, a candidate's scored answers in that domain alone give a
domain θ̂ and its SE (EAP on the design's grid and prior, item parameters fixed at their bank
values: the same posterior the engine keeps, restricted to the domain's items). The level is

- ``above`` the passing standard when θ̂ − k·SE > θcut,
- ``below`` when θ̂ + k·SE < θcut,
- ``near`` otherwise (the interval θ̂ ± k·SE contains the cut),

with k = ``report.near_se`` (1 by default), and ``too few items`` for a domain with fewer than
``report.min_domain_items`` scored answers. A design without a cut reports θ̂ and SE per domain
but no level.

Caveat (stated on the report): a domain estimate rests on a handful of items, so its SE is large
and the level is a guide for study, not a second pass/fail decision; "near" is the common outcome.

**Subscores.** When the bank carries a subscore model (:mod:`adaptive.bank.subscores`: the items calibrated
with each content domain as a correlated factor), each domain also gets its subscore: the domain's θ estimated
from all of the candidate's scored answers at once (EAP or MAP under the model's N(μ, Σ); a domain borrows
strength from the correlated others), its SE (posterior SD) and its reliability at this candidate,
``1 - SE² / σ²`` with σ² the domain's latent variance (the share of the domain's spread among candidates that
the answers resolve). The level then comes from the subscore and its SE. With a reporting scale the subscore
and its SE are also given on the scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .state import BatchState

__all__ = ["DomainPerformance", "domain_names", "domain_performance"]

ABOVE, NEAR, BELOW, TOO_FEW = "above", "near", "below", "too few items"


@dataclass(frozen=True)
class DomainPerformance:
    """One domain of one candidate's report."""

    domain: str
    n_items: int
    n_correct: int
    theta: float | None
    se: float | None
    level: str | None
    subscore: float | None = None
    subscore_se: float | None = None
    reliability: float | None = None
    scaled_subscore: float | None = None
    scaled_subscore_se: float | None = None

    def to_dict(self) -> dict:
        out = {"domain": self.domain, "n_items": self.n_items, "n_correct": self.n_correct, "theta": self.theta,
               "se": self.se, "level": self.level}
        if self.subscore is not None:
            out |= {"subscore": self.subscore, "subscore_se": self.subscore_se, "reliability": self.reliability,
                    "scaled_subscore": self.scaled_subscore, "scaled_subscore_se": self.scaled_subscore_se}
        return out


def domain_names(bank) -> list[str]:
    """The bank's content domains in the order they first appear (items without a domain are left out)."""
    return list(dict.fromkeys(it.domain for it in bank.items if it.domain))


def domain_performance(engine, state: BatchState, rows=None) -> list[list[DomainPerformance]]:
    """The domain report of the sessions ``rows`` of ``state`` (all by default), one list per session.

    Vectorized over sessions and answers: the scored answers' log-probability rows are summed per
    (session, domain) with one ``np.add.at``, then every domain posterior is summarized at once.
    """
    ctx, d = engine.ctx, engine.design
    rows = np.arange(state.n) if rows is None else np.asarray(rows, dtype=np.int64)
    names = domain_names(engine.bank)
    index = {n: k for k, n in enumerate(names)}
    item_dom = np.array([index.get(it.domain, -1) if it.domain else -1 for it in engine.bank.items], dtype=np.int64)
    n_dom, n = len(names), rows.size
    seq = state.sequence[rows]
    scored = (seq >= 0) & ~state.seq_pretest[rows]
    r_idx, pos = np.nonzero(scored)
    items = seq[r_idx, pos]
    dom = item_dom[items]
    keep = dom >= 0
    r_idx, pos, items, dom = r_idx[keep], pos[keep], items[keep], dom[keep]
    resp = state.seq_response[rows][r_idx, pos].astype(np.int64)
    cell = r_idx * n_dom + dom
    log_post = np.tile(ctx.log_prior - ctx.log_prior.max(), (n * n_dom, 1))
    np.add.at(log_post, cell, ctx.lp_rows[resp * ctx.arrays.n_items + items])
    theta, se = ctx.eap_moments(log_post) if n * n_dom else (np.zeros(0), np.zeros(0))
    count = np.bincount(cell, minlength=n * n_dom)
    correct = np.bincount(cell, weights=(resp >= ctx.arrays.n_cat[items] - 1).astype(float), minlength=n * n_dom)
    rep = d.report
    k = rep.near_se
    cut = ctx.cut
    sub = _subscores(engine, state, rows, names)
    out = []
    for s in range(n):  # building the per-session lists of dataclasses; the numerics above are vectorized
        report = []
        for j, name in enumerate(names):
            c = s * n_dom + j
            few = count[c] < rep.min_domain_items
            t, e = (theta[c], se[c]) if sub is None or np.isnan(sub[0][s, j]) else (sub[0][s, j], sub[1][s, j])
            level = None
            if few:
                level = TOO_FEW
            elif cut is not None:
                level = ABOVE if t - k * e > cut else BELOW if t + k * e < cut else NEAR
            extra = {} if sub is None else dict(zip(
                ("subscore", "subscore_se", "reliability", "scaled_subscore", "scaled_subscore_se"),
                (None if np.isnan(v) else float(v) for v in (arr[s, j] for arr in sub))))
            report.append(DomainPerformance(name, int(count[c]), int(correct[c]),
                                            None if few else float(theta[c]), None if few else float(se[c]), level,
                                            **extra))
        out.append(report)
    return out


def _subscores(engine, state: BatchState, rows, names):
    """``(subscore, SE, reliability, scaled, scaled SE)``, each ``(n, domains)`` (NaN for a domain the subscore
    model has no factor for; scaled NaN without a scale), or None when the bank has no subscore model."""
    model = engine.bank.subscores
    if model is None:
        return None
    from ..scoring.multidim import estimate_vector

    mbank = model.bank
    column = {iid: j for j, iid in enumerate(mbank.item_ids)}
    to_sub = np.array([column.get(iid, -1) for iid in engine.bank.ids], dtype=np.int64)
    seq = state.sequence[rows]
    scored = (seq >= 0) & ~state.seq_pretest[rows]
    r_idx, pos = np.nonzero(scored)
    cols = to_sub[seq[r_idx, pos]]
    keep = cols >= 0
    values = np.full((rows.size, len(mbank)), np.nan)
    values[r_idx[keep], cols[keep]] = state.seq_response[rows][r_idx[keep], pos[keep]]
    est = estimate_vector(mbank, values, method=model.method)
    factor = {f: q for q, f in enumerate(mbank.factor_names)}
    q = np.array([factor.get(nm, -1) for nm in names], dtype=np.int64)
    has = q >= 0
    pick = np.where(has, q, 0)
    theta = np.where(has, est.theta[:, pick], np.nan)
    se = np.where(has, est.se[:, pick], np.nan)
    reliability = 1.0 - se ** 2 / np.diag(mbank.latent_cov)[pick]
    scale = engine.design.scale
    if scale is None:
        scaled = scaled_se = np.full_like(theta, np.nan)
    else:
        scaled = np.where(has, scale.to_scaled(np.nan_to_num(theta)), np.nan)
        scaled_se = se * scale.slope
    return theta, se, reliability, scaled, scaled_se
