"""Promotion of pretest items to operational status, and retirement, with every item's parameter history.

:func:`pretest_fit` is the item-fit statistic for adaptive data. Summed scores (S-X2) mean nothing when every
candidate answers different items, so candidates who answered the item are grouped by their ability estimate
from the operational answers (EAP), in ``groups`` equal-count groups (Yen's 1981 Q1 layout). Then
``Q1 = Σ_g n_g (O_g - E_g)² / (E_g (1 - E_g))``, with ``O_g`` the proportion right and ``E_g`` the mean model
probability of the members, each averaged over the member's posterior (so the shrinkage of the EAP does not
bias it). It is referred to χ² with ``groups - free parameters`` degrees of freedom.
Dichotomous items only. With precise θ̂ (a CAT of 30+ items) the reference distribution is close; with
short tests Q1 is liberal.

:func:`promote` decides per pretest item: promoted when it has at least ``min_n`` answers, SEs of a and b at
most ``max_se_a`` and ``max_se_b``, and a fit p-value at least ``fit_alpha``; otherwise it stays pretest and
the reasons are listed. A promoted item gets the new parameters, ``status = "operational"``, provenance, and
its previous parameters appended to ``history``. :func:`retire` moves items to ``status = "retired"`` with a
history record.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2

from ..answers import Records
from ..bank import ItemBank
from ..exceptions import CalibrationError
from ..tables import Table

__all__ = ["PretestFit", "pretest_fit", "PromotionResult", "promote", "retire"]


@dataclass(frozen=True)
class PretestFit(Table):
    """Q1 fit of items on adaptive data: statistic, df, p-value and the answers per item."""

    key = "item_id"
    item_id: tuple
    q1: np.ndarray
    df: np.ndarray
    p_value: np.ndarray
    n: np.ndarray


def pretest_fit(bank: ItemBank, records: Records, item_ids, *, groups: int = 10) -> PretestFit:
    """Q1 of ``item_ids`` at their parameters in ``bank``; θ̂ is the EAP from the *other* (operational) answers."""
    from ..scoring import expected_a_posteriori
    from ..scoring.responses import SparseResponses

    arrays = bank.compile()
    idx = np.array([bank.index[i] for i in item_ids])
    studied = np.zeros(arrays.n_items, dtype=bool)
    studied[idx] = True
    studied |= arrays.status != 0  # pretest and retired items never inform θ̂
    keep = ~studied[records.item]
    resp = SparseResponses(records.person[keep], records.item[keep], records.category[keep], records.n_persons,
                           records.n_items)
    est = expected_a_posteriori(arrays, resp)
    assert est.log_posterior is not None and est.grid is not None  # EAP keeps both
    theta, post = est.theta, np.exp(est.log_posterior)  # (N,), (N, Q)
    p_grid = np.exp(arrays.subset(idx).terms(est.grid).log_prob[:, :, 1])  # (Q, items)
    q1, df, pv, n = [], [], [], []
    for k_item, i in enumerate(idx):  # one item at a time: a sort and a few sums each
        sel = records.item == i
        th, x = theta[records.person[sel]], records.category[sel].astype(float)
        m = th.size
        n.append(m)
        g = min(groups, max(m // 20, 2))
        free = 3 if bank.items[i].model in ("3pl",) else 4 if bank.items[i].model == "4pl" else \
            1 if bank.items[i].model in ("rasch", "1pl") else 2
        if m < 2 * g or arrays.n_cat[i] != 2:
            q1.append(np.nan)
            df.append(0)
            pv.append(np.nan)
            continue
        order = np.argsort(th, kind="stable")
        group = np.empty(m, dtype=int)
        group[order] = np.arange(m) * g // m
        # each member's probability averaged over their posterior: unbiased where θ̂ itself is shrunk
        p = post[records.person[sel]] @ p_grid[:, k_item]
        n_g = np.bincount(group, minlength=g).astype(float)
        o_g = np.bincount(group, weights=x, minlength=g) / n_g
        e_g = np.bincount(group, weights=p, minlength=g) / n_g
        stat = float(np.sum(n_g * (o_g - e_g) ** 2 / np.maximum(e_g * (1 - e_g), 1e-12)))
        d = max(g - free, 1)
        q1.append(stat)
        df.append(d)
        pv.append(float(chi2.sf(stat, d)))
    return PretestFit(item_id=tuple(item_ids), q1=np.array(q1, dtype=float), df=np.array(df, dtype=int),
                      p_value=np.array(pv, dtype=float), n=np.array(n, dtype=int))


@dataclass(frozen=True)
class PromotionResult(Table):
    """One row per pretest item considered: the evidence and the decision."""

    key = "item_id"
    column_names = ("item_id", "n", "a", "b", "se_a", "se_b", "fit_p", "promoted", "reasons")
    item_id: tuple
    n: np.ndarray
    a: np.ndarray
    b: np.ndarray
    se_a: np.ndarray
    se_b: np.ndarray
    fit_p: np.ndarray
    promoted: np.ndarray
    reasons: tuple
    bank: ItemBank | None = None

    def summary(self) -> str:
        lines = [f"{int(self.promoted.sum())} of {len(self.item_id)} pretest item(s) promoted to operational"]
        for k, iid in enumerate(self.item_id):
            verdict = "promoted" if self.promoted[k] else f"kept as pretest: {self.reasons[k]}"
            lines.append(f"  {iid:<14} n {self.n[k]:6d}  a {self.a[k]:.3f} (SE {self.se_a[k]:.3f})  b {self.b[k]:+.3f} "
                         f"(SE {self.se_b[k]:.3f})  fit p {self.fit_p[k]:.3f}  {verdict}")
        return "\n".join(lines)


def _record(item, reason: str, today) -> dict:
    return {"model": item.model, "a": item.a, "b": item.b, "c": item.c, "d": item.d, "thresholds": item.thresholds,
            "status": item.status, "until": today, "provenance": item.provenance, "reason": reason}


def promote(bank: ItemBank, calibration, records: Records, *, min_n: int = 500, max_se_a: float = 0.2,
            max_se_b: float = 0.2, fit_alpha: float = 0.01, today: _dt.date | None = None) -> PromotionResult:
    """Promote the pretest items of ``calibration`` (an :class:`~adaptive.calibration.online.OnlineCalibration`
    of ``bank``'s pretest items from ``records``) that meet the criteria; see the module docstring."""
    today = today or _dt.date.today()
    for name, v in (("max_se_a", max_se_a), ("max_se_b", max_se_b)):
        if not v > 0:
            raise CalibrationError(f"{name}={v!r}: give a positive SE bound")
    valid = np.isfinite(calibration.a) & (calibration.a > 0) & np.isfinite(calibration.b)
    ids = list(calibration.item_id)
    usable = [i for i, v in zip(ids, valid, strict=True) if v]
    fit = pretest_fit(calibration.bank(bank, only=usable), records, ids)
    promoted, reasons = [], []
    for k, _iid in enumerate(calibration.item_id):
        why = [] if valid[k] else [f"no usable estimate (a = {calibration.a[k]:.3f}: the item does not discriminate "
                                   "or discriminates the wrong way; review its key)"]
        if calibration.n[k] < min_n:
            why.append(f"{int(calibration.n[k])} answers < {min_n}")
        if not calibration.se_a[k] <= max_se_a:
            why.append(f"SE(a) {calibration.se_a[k]:.3f} > {max_se_a:g}")
        if not calibration.se_b[k] <= max_se_b:
            why.append(f"SE(b) {calibration.se_b[k]:.3f} > {max_se_b:g}")
        if np.isfinite(fit.p_value[k]) and fit.p_value[k] < fit_alpha:
            why.append(f"misfit (Q1 p = {fit.p_value[k]:.4f} < {fit_alpha:g})")
        elif not np.isfinite(fit.p_value[k]):
            why.append("fit not assessable (too few answers)")
        promoted.append(not why)
        reasons.append("; ".join(why))
    decided = dict(zip(calibration.item_id, promoted, strict=True))
    updated = calibration.bank(bank, only=[i for i in ids if decided[i]])
    items: list = []
    for old, new in zip(bank.items, updated.items, strict=True):
        if decided.get(old.id):
            rec = new.model_dump(exclude_defaults=True)
            rec["status"] = "operational"
            rec["history"] = [h.model_dump() for h in old.history] + [_record(old, "promoted from pretest", today)]
            items.append(rec)
        else:
            items.append(old)
    out = ItemBank(name=bank.name, version=bank.version, description=bank.description, scaling=bank.scaling,
                   blueprint=bank.blueprint, items=items)
    return PromotionResult(item_id=calibration.item_id, n=np.asarray(calibration.n), a=calibration.a,
                           b=calibration.b, se_a=calibration.se_a, se_b=calibration.se_b,
                           fit_p=np.where(valid, fit.p_value, np.nan),
                           promoted=np.array(promoted), reasons=tuple(reasons), bank=out)


def retire(bank: ItemBank, item_ids, reason: str, *, today: _dt.date | None = None) -> ItemBank:
    """``bank`` with ``item_ids`` retired (never given again; kept for scoring old sessions), each with a history
    record of ``reason``."""
    today = today or _dt.date.today()
    unknown = [i for i in item_ids if i not in bank.index]
    if unknown:
        raise CalibrationError(f"{len(unknown)} item id(s) are not in the bank, e.g. {unknown[:5]}")
    if not reason or not reason.strip():
        raise CalibrationError("give a reason for retiring the items (it is kept in each item's history)")
    ids = set(item_ids)
    items: list = []
    for it in bank.items:
        if it.id in ids:
            rec = it.model_dump(exclude_defaults=True)
            rec["status"] = "retired"
            rec["history"] = [h.model_dump() for h in it.history] + [_record(it, f"retired: {reason}", today)]
            items.append(rec)
        else:
            items.append(it)
    return ItemBank(name=bank.name, version=bank.version, description=bank.description, scaling=bank.scaling,
                    blueprint=bank.blueprint, items=items)
