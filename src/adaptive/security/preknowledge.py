"""Item pre-knowledge: candidates who did better (and faster) on leaked items, and items that changed.

**Per candidate** (Sinharay 2017, the signed likelihood-ratio statistic), given a set C of suspected
compromised items and the secure rest S of each candidate's answers:

* responses: ``LR = 2 [ℓ_C(θ̂_C) + ℓ_S(θ̂_S) - ℓ(θ̂)]`` with ML estimates (bounded at ±6) on each part and
  on all answers; ``z = sign(θ̂_C - θ̂_S) sqrt(LR)``, approximately N(0, 1) when nothing is leaked. Large
  positive: better on the compromised items than the secure ones predict.
* times (with a fitted :class:`~adaptive.security.response_times.ResponseTimeFit`): the ML speeds on each
  part, ``z_t = (τ̂_C - τ̂_S) / sqrt(1/A_C + 1/A_S)``, ``A = Σ α_i²``; exactly N(0, 1) under the model with
  known item parameters. Large positive: faster on the compromised items.
* combined: Stouffer's ``(z + z_t)/√2`` (the two are independent under the model given θ and τ).

**Per item** (a drift scan after a date): the mean standardized residual ``(x - E x)/sd`` at each
candidate's WLE θ̂, and the mean standardized log-time residual, compared between answers given before and
after ``after`` (two-sample z with the model variance 1 per answer). A leaked item gets easier
(residual up) and faster (time residual down); the one-sided p-values are combined by Stouffer and
controlled for the number of items by Benjamini–Hochberg. ``suspected_items`` turns the scan into the
set C when no set is known.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import false_discovery_control, norm

from ..answers import Records
from ..exceptions import ScoringError
from ..scoring.long_format import estimate_theta
from ..tables import Table
from ._stats import below, stouffer
from .response_times import ResponseTimeFit

__all__ = ["PreknowledgeResult", "preknowledge", "ItemScan", "item_scan", "suspected_items"]


def _arrays(bank):
    return bank.compile() if hasattr(bank, "compile") else bank


def item_mask(bank, compromised, n_items) -> np.ndarray:
    arr = np.asarray(compromised)
    if arr.dtype == bool:
        if arr.shape != (n_items,):
            raise ScoringError(f"a compromised mask needs one value per bank item ({n_items}); got {arr.shape}")
        return arr
    index = getattr(bank, "index", None)
    out = np.zeros(n_items, dtype=bool)
    unknown = []
    for c in compromised:
        if isinstance(c, (int, np.integer)) and not isinstance(c, bool):
            if not 0 <= int(c) < n_items:
                raise ScoringError(f"compromised item index {c} is outside the bank (0..{n_items - 1})")
            out[int(c)] = True
        elif index is not None and str(c) in index:
            out[index[str(c)]] = True
        else:
            unknown.append(str(c))
    if unknown:
        raise ScoringError(f"{len(unknown)} compromised item id(s) are not in the bank: {unknown[:10]}; check the list")
    return out


def _loglik(arrays, rec: Records, theta) -> np.ndarray:
    tm = arrays.terms_at(np.nan_to_num(theta[rec.person]), rec.item)
    chosen = np.take_along_axis(tm.log_prob, rec.category[:, None], axis=1)[:, 0]
    return rec.per_person(chosen)


@dataclass(frozen=True)
class PreknowledgeResult(Table):
    """Per-candidate pre-knowledge statistics (see the module docstring).

    Attributes
    ----------
    person_id : ids; n_compromised, n_secure : answers in each part
    theta_compromised, theta_secure : ML θ̂ on each part
    z_response, p_response : signed LR statistic and its upper-tail p-value
    z_time, p_time : the speed statistic (NaN without times) and its p-value
    z_combined, p_combined : Stouffer's combination of those available
    """

    key = "person_id"
    person_id: tuple
    n_compromised: np.ndarray
    n_secure: np.ndarray
    theta_compromised: np.ndarray
    theta_secure: np.ndarray
    z_response: np.ndarray
    p_response: np.ndarray
    z_time: np.ndarray
    p_time: np.ndarray
    z_combined: np.ndarray
    p_combined: np.ndarray

    def flagged(self, alpha: float = 0.01) -> np.ndarray:
        return below(self.p_combined, alpha)


def preknowledge(bank, records: Records, compromised, *, rt_fit: ResponseTimeFit | None = None) -> PreknowledgeResult:
    """Signed LR statistics of every candidate for the suspected set ``compromised`` (item ids, bank indices
    or an ``(I,)`` bool mask)."""
    arrays = _arrays(bank)
    comp = item_mask(bank, compromised, records.n_items)
    in_c = comp[records.item]
    rc, rs = records.subset(in_c), records.subset(~in_c)
    t_all = estimate_theta(arrays, records, "ml").theta
    t_c = estimate_theta(arrays, rc, "ml").theta
    t_s = estimate_theta(arrays, rs, "ml").theta
    n_c, n_s = rc.answered(), rs.answered()
    both = (n_c > 0) & (n_s > 0)
    lr = 2.0 * (_loglik(arrays, rc, t_c) + _loglik(arrays, rs, t_s) - _loglik(arrays, records, t_all))
    with np.errstate(invalid="ignore"):
        z = np.where(both, np.sign(t_c - t_s) * np.sqrt(np.maximum(lr, 0.0)), np.nan)
    z_t = np.full(records.n_persons, np.nan)
    if rt_fit is not None and records.has_times:
        z_t = _speed_contrast(rt_fit, records, in_c)
    zc = stouffer(z, z_t)
    return PreknowledgeResult(person_id=records.person_ids, n_compromised=n_c, n_secure=n_s, theta_compromised=t_c,
                              theta_secure=t_s, z_response=z, p_response=norm.sf(z), z_time=z_t, p_time=norm.sf(z_t),
                              z_combined=zc, p_combined=norm.sf(zc))


def _speed_contrast(fit: ResponseTimeFit, records: Records, in_c) -> np.ndarray:
    lt = records.log_seconds
    ok = np.isfinite(lt) & np.isfinite(fit.intensity[records.item])
    n = records.n_persons
    a2 = np.where(ok, fit.discrimination[records.item] ** 2, 0.0)
    u = np.where(ok, fit.intensity[records.item] - np.nan_to_num(lt), 0.0)
    out = []
    for part in (in_c, ~in_c):
        w = a2 * part
        big_a = records.per_person(w)
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append((records.per_person(w * u) / big_a, big_a))
    (tc, ac), (ts, as_) = out
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((ac > 0) & (as_ > 0), (tc - ts) / np.sqrt(1.0 / ac + 1.0 / as_), np.full(n, np.nan))


@dataclass(frozen=True)
class ItemScan(Table):
    """Per-item change after a date (see the module docstring).

    Attributes
    ----------
    item_id; n_before, n_after : answers on each side of the date
    residual_shift, z_residual : change in the mean standardized residual and its z (positive: easier)
    time_shift, z_time : change in the mean standardized log-time residual and its z (positive: faster)
    p_values : one-sided p-value of the combination; q_values : Benjamini–Hochberg adjusted
    """

    key = "item_id"
    item_id: tuple
    n_before: np.ndarray
    n_after: np.ndarray
    residual_shift: np.ndarray
    z_residual: np.ndarray
    time_shift: np.ndarray
    z_time: np.ndarray
    p_values: np.ndarray
    q_values: np.ndarray

    def flagged(self, fdr: float = 0.05) -> np.ndarray:
        return below(self.q_values, fdr)


def item_scan(bank, records: Records, after: float, *, rt_fit: ResponseTimeFit | None = None,
              min_answers: int = 10) -> ItemScan:
    """Compare every item's answers before and after the POSIX time ``after``; see the module docstring."""
    if not np.isfinite(records.answered_at).any():
        raise ScoringError("the records carry no answer times (answered_at); export them from the service to scan "
                           "items for a change after a date")
    arrays = _arrays(bank)
    theta = estimate_theta(arrays, records, "wle").theta
    tm = arrays.terms_at(np.nan_to_num(theta[records.person]), records.item)
    p = np.exp(tm.log_prob)
    k = np.arange(p.shape[1])
    e = p @ k
    var = np.maximum(p @ (k * k) - e ** 2, 1e-12)
    resid = (records.category - e) / np.sqrt(var)
    late = records.answered_at >= after
    timed_at = np.isfinite(records.answered_at)
    n_i = records.n_items

    def shift(values, valid):
        cnt_a = np.bincount(records.item, weights=(valid & late & timed_at), minlength=n_i)
        cnt_b = np.bincount(records.item, weights=(valid & ~late & timed_at), minlength=n_i)
        v = np.where(valid, values, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_a = np.bincount(records.item, weights=v * (late & timed_at), minlength=n_i) / cnt_a
            mean_b = np.bincount(records.item, weights=v * (~late & timed_at), minlength=n_i) / cnt_b
            d = mean_a - mean_b
            z = d / np.sqrt(1.0 / cnt_a + 1.0 / cnt_b)
        enough = (cnt_a >= min_answers) & (cnt_b >= min_answers)
        return np.where(enough, d, np.nan), np.where(enough, z, np.nan), cnt_b, cnt_a

    d_r, z_r, n_b, n_a = shift(resid, np.ones(records.n_records, dtype=bool))
    d_t = z_t = np.full(n_i, np.nan)
    if rt_fit is not None and records.has_times:
        zt_r = -rt_fit.residuals(records.person, records.item, records.log_seconds)  # positive: faster
        d_t, z_t, _, _ = shift(np.nan_to_num(zt_r), np.isfinite(zt_r))
    zc = stouffer(z_r, z_t)
    pv = norm.sf(zc)
    q = np.full(n_i, np.nan)
    ok = np.isfinite(pv)
    if ok.any():
        q[ok] = false_discovery_control(pv[ok], method="bh")
    ids = tuple(getattr(_arrays(bank), "ids", tuple(str(i) for i in range(n_i))))
    return ItemScan(item_id=ids, n_before=n_b.astype(int), n_after=n_a.astype(int), residual_shift=d_r, z_residual=z_r,
                    time_shift=d_t, z_time=z_t, p_values=pv, q_values=q)


def suspected_items(scan: ItemScan, fdr: float = 0.05) -> np.ndarray:
    """The ``(I,)`` mask of items the scan flags at false-discovery rate ``fdr`` (for :func:`preknowledge`)."""
    if not 0 < fdr < 1 or math.isnan(fdr):
        raise ScoringError(f"fdr {fdr!r}: give a false-discovery rate between 0 and 1 (e.g. 0.05)")
    return scan.flagged(fdr)
