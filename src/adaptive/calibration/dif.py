"""Differential item functioning between a reference and a focal group: Mantel-Haenszel and logistic regression.

Both match examinees on the summed score over the items given (``matching="total"``, the studied item
included, as is customary for MH) or on a score you pass. Dichotomous items (0/1) only; rows with a
missing response to the studied item are left out of that item's analysis, and when any response is
missing the matching score must be given (summed scores are not comparable across different item sets).

* **Mantel-Haenszel** (Holland & Thayer 1988): per score level ``s`` the 2x2 table (reference/focal x
  right/wrong) gives ``alpha_MH = Σ A_s D_s / N_s / Σ B_s C_s / N_s`` and ``MH D-DIF = -2.35 ln alpha_MH``
  (negative: the item favours the reference group); ``MH chi-square`` with the continuity correction;
  the standard error of ``ln alpha_MH`` by Robins, Breslow & Greenland (1986). ETS classes (Zieky 1993):
  **A** when ``|D| < 1`` or the chi-square is not significant at .05; **C** when ``|D| >= 1.5`` and ``|D|``
  is significantly greater than 1 (one-sided .05: ``(|D| - 1) / SE > 1.645``); **B** otherwise.
* **Logistic regression** (Swaminathan & Rogers 1990): nested models ``logit P = b0 + b1 S`` (M0),
  ``+ b2 G`` (M1), ``+ b3 S·G`` (M2); likelihood-ratio tests for uniform (M1 vs M0), non-uniform (M2 vs M1)
  and total DIF (M2 vs M0, 2 df); effect size the change in Nagelkerke R² from M0 to M2, classified by
  Jodoin & Gierl (2001): A below .035, B .035 to .070, C above .070 (when the 2-df test is significant).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2, norm

from ..exceptions import CalibrationError
from ..tables import Table
from .api import as_response_data

__all__ = ["MantelHaenszelDIF", "LogisticDIF", "dif_mantel_haenszel", "dif_logistic"]

#: ETS delta scale: delta = -2.35 log(alpha_MH) (Holland & Thayer 1988)
ETS_DELTA_SCALE = 2.35
#: ETS classes: A below |delta| 1.0 (or not significant), C from |delta| 1.5 when significantly above 1.0
ETS_A_BELOW, ETS_C_FROM = 1.0, 1.5
#: Jodoin & Gierl (2001) effect-size bounds on Nagelkerke's delta R^2 for logistic-regression DIF classes
DELTA_R2_B, DELTA_R2_C = 0.035, 0.070


@dataclass(frozen=True)
class MantelHaenszelDIF(Table):
    """Mantel-Haenszel DIF per item (Holland & Thayer 1988; ETS classes after Zwick 2012).

    Attributes
    ----------
    item_id; alpha_mh : common odds ratio (reference vs focal); delta_mh : -2.35 log(alpha_mh), negative when
    the item favours the reference group; se_delta; chi2, p : the continuity-corrected MH test;
    ets : "A", "B", "C" (or "n/a" when undefined); n_reference, n_focal
    """

    key = "item_id"
    item_id: tuple
    alpha_mh: np.ndarray
    delta_mh: np.ndarray
    se_delta: np.ndarray
    chi2: np.ndarray
    p: np.ndarray
    ets: tuple
    n_reference: np.ndarray
    n_focal: np.ndarray


@dataclass(frozen=True)
class LogisticDIF(Table):
    """Logistic-regression DIF per item (Swaminathan & Rogers 1990; classes by Jodoin & Gierl 2001).

    Attributes
    ----------
    item_id; chi2_uniform, p_uniform; chi2_nonuniform, p_nonuniform; chi2_total, p_total (2 df);
    delta_r2 : Nagelkerke R^2 gain of the full model; dif_class : "A", "B" or "C"; n : responses
    """

    key = "item_id"
    item_id: tuple
    chi2_uniform: np.ndarray
    p_uniform: np.ndarray
    chi2_nonuniform: np.ndarray
    p_nonuniform: np.ndarray
    chi2_total: np.ndarray
    p_total: np.ndarray
    delta_r2: np.ndarray
    dif_class: tuple
    n: np.ndarray


def _setup(responses, groups, focal, reference, item_ids, matching):
    values, ids, _ = as_response_data(responses, item_ids)
    g = np.asarray(groups)
    if g.shape != (values.shape[0],):
        raise CalibrationError(f"groups has shape {g.shape}; give one label per response row ({values.shape[0]})")
    labels = sorted(set(g.tolist()), key=str)
    if focal is None or reference is None:
        if len(labels) != 2:
            raise CalibrationError(f"groups has labels {labels[:10]}; name focal= and reference= when there are not "
                                   "exactly two")
        reference = labels[0] if reference is None else reference
        focal = [x for x in labels if x != reference][0] if focal is None else focal
    for what, lab in (("focal", focal), ("reference", reference)):
        if lab not in labels:
            raise CalibrationError(f"{what} group {lab!r} is not among the labels {labels[:10]}")
    is_f = g == focal
    is_r = g == reference
    observed = ~np.isnan(values)
    if np.any(observed & ~np.isin(values, (0.0, 1.0))):
        raise CalibrationError("DIF here is for dichotomous items: every response must be 0 or 1")
    if isinstance(matching, str):
        if matching != "total":
            raise CalibrationError(f"matching={matching!r}: use 'total' or give one matching score per row")
        if not observed.all():
            raise CalibrationError("some responses are missing, so summed scores are not comparable; pass matching= "
                                   "(e.g. θ estimates rounded into bins, or a score on a common anchor set)")
        score = values.sum(axis=1)
    else:
        score = np.asarray(matching, dtype=float)
        if score.shape != (values.shape[0],):
            raise CalibrationError(f"matching has shape {score.shape}; give one score per response row")
    return values, ids, is_f, is_r, score


def dif_mantel_haenszel(responses, groups, *, focal=None, reference=None, item_ids=None, matching="total",
                        alpha=0.05):
    """Mantel-Haenszel DIF of every item; see :class:`MantelHaenszelDIF`."""
    values, ids, is_f, is_r, score = _setup(responses, groups, focal, reference, item_ids, matching)
    levels, strat = np.unique(score, return_inverse=True)
    n_lv = levels.size
    rows = []
    for i, iid in enumerate(ids):  # per item: bincounts over score levels (vectorized inside)
        ok = ~np.isnan(values[:, i]) & (is_f | is_r)
        x = values[ok, i]
        st = strat[ok]
        f = is_f[ok]

        def cnt(sel, st=st):
            return np.bincount(st[sel], minlength=n_lv).astype(float)

        a_ = cnt(~f & (x == 1))  # reference right
        b_ = cnt(~f & (x == 0))  # reference wrong
        c_ = cnt(f & (x == 1))  # focal right
        d_ = cnt(f & (x == 0))  # focal wrong
        n_ = a_ + b_ + c_ + d_
        use = (n_ > 1) & (a_ + b_ > 0) & (c_ + d_ > 0)
        a_, b_, c_, d_, n_ = a_[use], b_[use], c_[use], d_[use], n_[use]
        r = a_ * d_ / n_
        s = b_ * c_ / n_
        R, S = r.sum(), s.sum()
        nr, nf, m1, m0 = a_ + b_, c_ + d_, a_ + c_, b_ + d_
        e_a = nr * m1 / n_
        v_a = nr * nf * m1 * m0 / (n_ ** 2 * (n_ - 1))
        with np.errstate(divide="ignore", invalid="ignore"):
            chi = (abs(a_.sum() - e_a.sum()) - 0.5) ** 2 / v_a.sum() if v_a.sum() > 0 else np.nan
            alpha_mh = R / S if S > 0 else np.inf
            p_ = (a_ + d_) / n_
            q_ = (b_ + c_) / n_
            var_log = ((p_ * r).sum() / (2 * R ** 2) + (p_ * s + q_ * r).sum() / (2 * R * S)
                       + (q_ * s).sum() / (2 * S ** 2))
            delta = -ETS_DELTA_SCALE * np.log(alpha_mh)
            se = ETS_DELTA_SCALE * np.sqrt(var_log)
        p = float(chi2.sf(chi, 1)) if np.isfinite(chi) else np.nan
        if not np.isfinite(delta) or not np.isfinite(p):
            ets = "n/a"
        elif abs(delta) < ETS_A_BELOW or p >= alpha:
            ets = "A"
        elif abs(delta) >= ETS_C_FROM and (abs(delta) - ETS_A_BELOW) / se > norm.ppf(1 - alpha):
            ets = "C"
        else:
            ets = "B"
        rows.append((iid, float(alpha_mh), float(delta), float(se), float(chi), p, ets, int(nr.sum()), int(nf.sum())))
    cols = list(zip(*rows, strict=True)) if rows else [()] * 9

    def num(k: int) -> np.ndarray:
        return np.array(cols[k], dtype=float)

    return MantelHaenszelDIF(item_id=tuple(cols[0]), alpha_mh=num(1), delta_mh=num(2), se_delta=num(3), chi2=num(4),
                             p=num(5), ets=tuple(cols[6]), n_reference=np.array(cols[7], dtype=int),
                             n_focal=np.array(cols[8], dtype=int))


def _logit_fits(x, m, design, max_iter=50):
    """Batched IRLS: per item (column of ``x``) a logistic regression on ``design``, rows with ``m`` True.

    Returns the maximized log-likelihoods ``(I,)``.
    """
    n, p = design.shape
    n_i = x.shape[1]
    beta = np.zeros((n_i, p))
    w_m = m.astype(float)
    ll_old = np.full(n_i, -np.inf)
    for _ in range(max_iter):
        eta = design @ beta.T  # (N, I)
        mu = 1.0 / (1.0 + np.exp(-eta))
        w = mu * (1 - mu) * w_m
        grad = design.T @ ((x - mu) * w_m)  # (p, I)
        hess = np.einsum("np,ni,nr->ipr", design, w, design) + 1e-10 * np.eye(p)[None]
        step = np.linalg.solve(hess, grad.T[:, :, None])[:, :, 0]
        beta = beta + step
        eta = design @ beta.T
        ll = (w_m * (x * eta - np.logaddexp(0.0, eta))).sum(axis=0)
        if np.max(np.abs(ll - ll_old)) < 1e-10:
            break
        ll_old = ll
    return ll


def dif_logistic(responses, groups, *, focal=None, reference=None, item_ids=None, matching="total", alpha=0.05):
    """Logistic-regression DIF of every item: LR statistics for uniform, non-uniform and total DIF, Nagelkerke ΔR²;
    see :class:`LogisticDIF`."""
    values, ids, is_f, is_r, score = _setup(responses, groups, focal, reference, item_ids, matching)
    keep = is_f | is_r
    values, score, gf = values[keep], score[keep], is_f[keep].astype(float)
    m = ~np.isnan(values)
    x = np.where(m, values, 0.0)
    s = (score - score.mean()) / (score.std() or 1.0)
    ones = np.ones_like(s)
    ll_null = _logit_fits(x, m, ones[:, None])
    ll0 = _logit_fits(x, m, np.column_stack([ones, s]))
    ll1 = _logit_fits(x, m, np.column_stack([ones, s, gf]))
    ll2 = _logit_fits(x, m, np.column_stack([ones, s, gf, s * gf]))
    n = m.sum(axis=0)

    def r2(ll):
        return (1 - np.exp(-2 * (ll - ll_null) / n)) / (1 - np.exp(2 * ll_null / n))

    uni, non, tot = 2 * (ll1 - ll0), 2 * (ll2 - ll1), 2 * (ll2 - ll0)
    dr2 = r2(ll2) - r2(ll0)
    p_tot = chi2.sf(tot, 2)
    cls = tuple("A" if (p >= alpha or d < DELTA_R2_B) else ("B" if d < DELTA_R2_C else "C")
                for p, d in zip(p_tot, dr2, strict=True))
    return LogisticDIF(item_id=tuple(ids), chi2_uniform=uni, p_uniform=chi2.sf(uni, 1), chi2_nonuniform=non,
                       p_nonuniform=chi2.sf(non, 1), chi2_total=tot, p_total=p_tot, delta_r2=dr2, dif_class=cls,
                       n=np.asarray(n, dtype=int))
