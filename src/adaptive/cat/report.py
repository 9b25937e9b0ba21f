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

    def to_dict(self) -> dict:
        return {"domain": self.domain, "n_items": self.n_items, "n_correct": self.n_correct, "theta": self.theta,
                "se": self.se, "level": self.level}


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
    out = []
    for s in range(n):  # building the per-session lists of dataclasses; the numerics above are vectorized
        report = []
        for j, name in enumerate(names):
            c = s * n_dom + j
            few = count[c] < rep.min_domain_items
            level = None
            if few:
                level = TOO_FEW
            elif cut is not None:
                level = ABOVE if theta[c] - k * se[c] > cut else BELOW if theta[c] + k * se[c] < cut else NEAR
            report.append(DomainPerformance(name, int(count[c]), int(correct[c]),
                                            None if few else float(theta[c]), None if few else float(se[c]), level))
        out.append(report)
    return out
