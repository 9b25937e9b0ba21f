"""Rapid guessing: per-item time thresholds, response-time effort, and what rapid answers do to θ̂.

* **Normative threshold** (Wise & Ma 2012, NT10): ``share`` (default 10%) of the item's mean response time,
  capped at ``cap`` seconds (default 10).
* **Mixture threshold**: a two-component normal mixture of the item's log times (fitted by EM for all items
  at once); the threshold is where the fast component's posterior falls to one half between the two means.
  An item whose fast component is absent (weight below 2%) or not separated from the slow one (means closer
  than 2 within-component SDs) has no mixture threshold (NaN) and falls back to the normative one.
* **Response-time effort** (Wise & Kong 2005): the share of a candidate's answers at or above the threshold.
  Candidates below ``0.90`` are commonly treated as not engaged.
* **Effect on θ̂**: the ability re-estimated with rapid answers treated as not administered.

Examples
--------
>>> import numpy as np
>>> t = np.array([[30., 2.], [40., 35.], [50., 45.]])
>>> normative_thresholds(t).round(2).tolist()
[4.0, 2.73]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..answers import Records
from ..exceptions import ScoringError
from ..scoring.long_format import estimate_theta

__all__ = ["normative_thresholds", "mixture_thresholds", "RapidGuessing", "rapid_guessing"]

#: response-time effort below this marks a candidate as not engaged (Wise & Kong 2005)
RTE_ENGAGED = 0.90


def _item_times(seconds, n_items=None):
    if isinstance(seconds, Records):
        ok = np.isfinite(seconds.seconds) & (seconds.seconds > 0)
        return seconds.item[ok], seconds.seconds[ok], seconds.n_items
    t = np.asarray(seconds, dtype=float)
    person, item = np.nonzero(np.isfinite(t) & (t > 0))
    return item, t[person, item], t.shape[1]


def normative_thresholds(seconds, share: float = 0.10, cap: float = 10.0) -> np.ndarray:
    """NT thresholds ``min(share × mean time, cap)`` per item, ``(I,)`` (NaN for an item with no times).

    ``seconds``: :class:`Records` or an ``(N, I)`` matrix with NaN where not administered.
    """
    if not 0 < share < 1:
        raise ScoringError(f"share {share!r}: give the fraction of the mean item time, between 0 and 1 (e.g. 0.10)")
    item, t, n_items = _item_times(seconds)
    cnt = np.bincount(item, minlength=n_items)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(item, weights=t, minlength=n_items) / cnt
    return np.minimum(share * mean, cap)


def mixture_thresholds(seconds, *, max_iter: int = 500, min_weight: float = 0.02, min_separation: float = 2.0,
                       bins: int = 200) -> np.ndarray:
    """Two-component normal-mixture thresholds on log time per item, ``(I,)`` seconds (NaN where no fast mode).

    EM for every item at once on the item's histogram of log times (``bins`` equal bins between its fastest
    and slowest answer; the bin width is far below the components' spread), starting from a split at the
    item's 20th percentile.
    """
    item, t, n_items = _item_times(seconds)
    y = np.log(t)
    cnt = np.bincount(item, minlength=n_items).astype(float)
    lo = np.full(n_items, np.inf)
    hi = np.full(n_items, -np.inf)
    np.minimum.at(lo, item, y)
    np.maximum.at(hi, item, y)
    width = np.where(hi > lo, (hi - lo) / bins, 1.0)
    b = np.minimum(((y - lo[item]) / width[item]).astype(np.int64), bins - 1)
    counts = np.bincount(item * bins + b, minlength=n_items * bins).reshape(n_items, bins)
    centre = np.where(np.isfinite(lo), lo, 0.0)[:, None] + (np.arange(bins) + 0.5)[None, :] * width[:, None]
    below = np.cumsum(counts, axis=1) <= 0.2 * cnt[:, None]
    resp = np.where(below, 1.0, 0.0)  # responsibility of the fast component, per bin

    def moments(w):
        wc = w * counts
        sw = wc.sum(axis=1)
        mu = (wc * centre).sum(axis=1) / np.maximum(sw, 1e-12)
        var = (wc * (centre - mu[:, None]) ** 2).sum(axis=1) / np.maximum(sw, 1e-12)
        return sw, mu, np.maximum(var, 1e-4)

    for _ in range(max_iter):
        sw1, mu1, v1 = moments(resp)
        sw2, mu2, v2 = moments(1.0 - resp)
        pi = sw1 / np.maximum(cnt, 1)
        l1 = ((np.log(np.maximum(pi, 1e-12)) - 0.5 * np.log(v1))[:, None]
              - 0.5 * (centre - mu1[:, None]) ** 2 / v1[:, None])
        l2 = ((np.log(np.maximum(1 - pi, 1e-12)) - 0.5 * np.log(v2))[:, None]
              - 0.5 * (centre - mu2[:, None]) ** 2 / v2[:, None])
        new = 1.0 / (1.0 + np.exp(np.clip(l2 - l1, -700, 700)))
        done = np.max(np.abs(new - resp) * (counts > 0), initial=0.0) < 1e-7
        resp = new
        if done:
            break
    sw1, mu1, v1 = moments(resp)
    sw2, mu2, v2 = moments(1.0 - resp)
    pi = sw1 / np.maximum(cnt, 1)
    # the crossing of the two weighted densities between the means: a x² + b x + c = 0
    qa = 0.5 / v2 - 0.5 / v1
    qb = mu1 / v1 - mu2 / v2
    qc = (0.5 * mu2 ** 2 / v2 - 0.5 * mu1 ** 2 / v1 + np.log(np.maximum(pi, 1e-12) / np.sqrt(v1))
          - np.log(np.maximum(1 - pi, 1e-12) / np.sqrt(v2)))
    with np.errstate(invalid="ignore", divide="ignore"):
        disc = np.sqrt(np.maximum(qb ** 2 - 4 * qa * qc, 0.0))
        r1, r2 = (-qb + disc) / (2 * qa), (-qb - disc) / (2 * qa)
        lin = -qc / qb
    quad = np.abs(qa) > 1e-9
    between = lambda r: (r > mu1) & (r < mu2)  # noqa: E731
    cross = np.where(quad, np.where(between(r1), r1, np.where(between(r2), r2, np.nan)), lin)
    sd_pool = np.sqrt(np.maximum(v1, v2))
    ok = (pi >= min_weight) & (mu2 - mu1 >= min_separation * sd_pool) & (cnt >= 20) & np.isfinite(cross)
    return np.where(ok, np.exp(cross), np.nan)


@dataclass(frozen=True)
class RapidGuessing:
    """Rapid guessing in a set of records.

    Attributes
    ----------
    thresholds : ``(I,)`` seconds (NaN: no threshold, no answer to the item counts as rapid)
    method : "normative", "mixture" or "given"
    rapid : ``(R,)`` bool -- the answer was faster than its item's threshold
    effort : ``(N,)`` -- response-time effort (share of non-rapid answers; NaN with no times)
    n_rapid : ``(N,)``
    theta, theta_without_rapid : ``(N,)`` -- WLE θ̂ with all answers, and with rapid answers left out
    rapid_correct_rate : share of rapid answers that were right (near chance when they are guesses)
    """

    thresholds: np.ndarray
    method: str
    rapid: np.ndarray
    effort: np.ndarray
    n_rapid: np.ndarray
    theta: np.ndarray
    theta_without_rapid: np.ndarray
    rapid_correct_rate: float

    def not_engaged(self, below: float = RTE_ENGAGED) -> np.ndarray:
        """``(N,)`` bool: response-time effort below ``below``."""
        return np.nan_to_num(self.effort, nan=1.0) < below


def rapid_guessing(bank, records: Records, *, method: str = "normative", thresholds=None, share: float = 0.10,
                   cap: float = 10.0, theta=None) -> RapidGuessing:
    """Flag rapid answers and measure their effect; see the module docstring.

    ``method``: "normative" (NT10), "mixture" (normal mixture, falling back to the normative threshold where
    an item has no fast mode), or pass ``thresholds (I,)`` in seconds. ``theta``: the WLE of every person on
    all answers, when already computed.
    """
    if thresholds is not None:
        thr = np.asarray(thresholds, dtype=float)
        if thr.shape != (records.n_items,):
            raise ScoringError(f"thresholds must have one value per bank item ({records.n_items}); got {thr.shape}")
        method = "given"
    elif method == "normative":
        thr = normative_thresholds(records, share, cap)
    elif method == "mixture":
        mix = mixture_thresholds(records)
        thr = np.where(np.isfinite(mix), mix, normative_thresholds(records, share, cap))
    else:
        raise ScoringError(f"method {method!r} is not known; use 'normative' or 'mixture', or pass thresholds")
    timed = np.isfinite(records.seconds)
    with np.errstate(invalid="ignore"):
        rapid = timed & (records.seconds < np.nan_to_num(thr[records.item], nan=-1.0))
    n_timed = records.per_person(timed.astype(float))
    n_rapid = records.per_person(rapid.astype(float))
    with np.errstate(invalid="ignore", divide="ignore"):
        effort = np.where(n_timed > 0, 1.0 - n_rapid / n_timed, np.nan)
    arrays = bank.compile() if hasattr(bank, "compile") else bank
    theta = estimate_theta(arrays, records, "wle").theta if theta is None else np.asarray(theta, dtype=float)
    theta_wo = theta.copy()
    touched = n_rapid > 0  # only candidates with rapid answers change
    if touched.any():
        keep = ~rapid & touched[records.person]
        sub = records.subset(keep)
        theta_wo[touched] = estimate_theta(arrays, sub, "wle").theta[touched]
    dich = arrays.n_cat[records.item] == 2
    sel = rapid & dich
    rate = float(records.category[sel].mean()) if sel.any() else float("nan")
    return RapidGuessing(thresholds=thr, method=method, rapid=rapid, effort=effort, n_rapid=n_rapid.astype(int),
                         theta=theta, theta_without_rapid=theta_wo, rapid_correct_rate=rate)
