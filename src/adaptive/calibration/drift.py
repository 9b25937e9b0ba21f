"""Item parameter drift between two calibrations of an operational pool, with iterative anchor purification.

The items common to an *old* and a *new* calibration (operational in the old one, dichotomous; the difficulty
``b`` is compared, and the slope through ``log a``) are compared after putting the new scale on the old one:

1. **Linking** ``θ_old = A θ_new + B`` (``b* = A b + B``, ``a* = a / A``; Kolen & Brennan 2014, ch. 6): first
   robustly (``A`` the ratio of the interquartile ranges of ``b``, ``B`` from the medians), then by
   mean-sigma on the anchor set that remains.
2. **Robust z** (Huynh & Meyer 2010): for the differences ``d_i = b*_i - b_old,i`` of all common
   items, ``z_i = (d_i - median d) / (0.74 IQR d)`` (median and IQR resist the drifting items); an item
   with ``|z| > threshold`` (default 1.645) drifts. The same on ``log a* - log a_old`` flags a slope that
   changed. With 1.645 about 10% of stable items are flagged by chance (the rule's usual, deliberately
   sensitive setting); 1.96 or 2.5 flag fewer.
3. **Displacement** (when the new calibration gives standard errors): ``d_i / sqrt(SE_old² + (A SE_new)²)``,
   flagged above the same threshold with ``rule="displacement"`` (or ``"either"``); an old bank without SEs
   (an operational pool) counts as known, ``SE_old = 0``.
4. **Purification**: drifting items leave the anchor set of the link and steps 1-3 repeat until the set
   stops changing (at most ``max_rounds``), so a drifting item cannot move the link for the others.

Examples
--------
>>> from adaptive.synthetic import synthetic_bank
>>> old = synthetic_bank(30, model="2pl", rng=1)
>>> res = parameter_drift(old, old)
>>> int(res.flagged.sum()), round(res.A, 6), round(res.B, 6)
(0, 1.0, 0.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..bank import ItemBank
from ..exceptions import CalibrationError
from ..tables import Table
from .linking import link

__all__ = ["DriftResult", "parameter_drift"]

#: 1 / (2 × 0.6745): the IQR of a normal distribution is 1.349 SD
IQR_TO_SD = 0.7413


def _params(obj, what: str):
    """(bank, {id: se of b}, {id: se of a}) from an ItemBank or a calibration result."""
    if isinstance(obj, ItemBank):
        return obj, {}, {}
    if hasattr(obj, "bank") and hasattr(obj, "standard_errors"):
        ses = obj.standard_errors
        se_b = {i: float(v) for i, v in zip(ses.item_id, ses.b, strict=True)}
        se_a = {i: float(v) for i, v in zip(ses.item_id, ses.a, strict=True)}
        return obj.bank, se_b, se_a
    raise CalibrationError(f"{what}: give an ItemBank or a calibration result, not {type(obj).__name__}")


@dataclass(frozen=True)
class DriftResult(Table):
    """One row per common dichotomous item.

    Attributes
    ----------
    item_id; b_old, b_new : difficulty on the old scale, and the new one linked to it
    shift : ``b_new - b_old``; se_shift : its SE (NaN without SEs); z_displacement : shift / se_shift
    robust_z : Huynh & Meyer's robust z of the shift; robust_z_a : the same for ``log a``
    flagged : drift in b (robust z, or displacement when SEs are given); flagged_a : drift in a
    anchor : used in the final link
    A, B : the final linking constants; rounds : purification rounds; threshold
    """

    key = "item_id"
    item_id: tuple
    b_old: np.ndarray
    b_new: np.ndarray
    shift: np.ndarray
    se_shift: np.ndarray
    z_displacement: np.ndarray
    robust_z: np.ndarray
    robust_z_a: np.ndarray
    flagged: np.ndarray
    flagged_a: np.ndarray
    anchor: np.ndarray
    A: float = 1.0
    B: float = 0.0
    rounds: int = 0
    threshold: float = 1.645

    def summary(self) -> str:
        lines = [f"{len(self)} common items; link A = {self.A:.4f}, B = {self.B:.4f} on {int(self.anchor.sum())} "
                 f"anchors after {self.rounds} purification round(s); {int(self.flagged.sum())} item(s) drift in b, "
                 f"{int(self.flagged_a.sum())} in a (|z| > {self.threshold:g})"]
        for k in np.flatnonzero(self.flagged | self.flagged_a):
            lines.append(f"  {self.item_id[k]:<14} b {self.b_old[k]:+.3f} -> {self.b_new[k]:+.3f} (shift "
                         f"{self.shift[k]:+.3f}, robust z {self.robust_z[k]:+.2f}"
                         + (f", displacement z {self.z_displacement[k]:+.2f}" if np.isfinite(self.z_displacement[k])
                            else "") + f"; log-a robust z {self.robust_z_a[k]:+.2f})")
        return "\n".join(lines)


def _robust_z(d: np.ndarray, ref: np.ndarray) -> np.ndarray:
    q1, med, q3 = np.percentile(d[ref], [25, 50, 75])
    scale = IQR_TO_SD * (q3 - q1)
    if scale > 1e-12:
        return (d - med) / scale
    # no spread among the typical items: any item off the median is infinitely far from them
    off = np.abs(d - med) > 1e-9
    return np.where(off, np.where(d > med, np.inf, -np.inf), 0.0)


def parameter_drift(old, new, *, rule: str = "robust_z", threshold: float = 1.645,
                    max_rounds: int = 10) -> DriftResult:
    """Compare two calibrations of the same items; see the module docstring.

    ``old``, ``new``: ItemBanks or calibration results (these bring standard errors). ``rule``: what flags an
    item's b -- ``"robust_z"`` (default; needs no SEs), ``"displacement"`` (needs SEs of both calibrations) or
    ``"either"``.
    """
    if not threshold > 0:
        raise CalibrationError(f"threshold={threshold!r}: give a positive z, e.g. 1.645 or 1.96")
    if rule not in ("robust_z", "displacement", "either"):
        raise CalibrationError(f"rule={rule!r}: use 'robust_z', 'displacement' or 'either'")
    bank_old, se_b_old, se_a_old = _params(old, "old")
    bank_new, se_b_new, _ = _params(new, "new")
    new_index = bank_new.index
    common = [it for it in bank_old.items if it.id in new_index and it.status == "operational"
              and it.model in ("rasch", "1pl", "2pl", "3pl", "4pl")
              and bank_new.items[new_index[it.id]].model in ("rasch", "1pl", "2pl", "3pl", "4pl")]
    if len(common) < 4:
        raise CalibrationError(f"{len(common)} dichotomous item(s) in common; drift needs at least 4 (ideally 20+) "
                               "items calibrated in both")
    ids = tuple(it.id for it in common)
    arr_old = ItemBank(items=common).compile()
    arr_new = ItemBank(items=[bank_new.items[new_index[i]] for i in ids]).compile()
    b_o, b_n = arr_old.thresholds[:, 0], arr_new.thresholds[:, 0]
    la_o, la_n = np.log(arr_old.a), np.log(arr_new.a)
    se_o = np.array([se_b_old.get(i, np.nan) for i in ids])
    se_n = np.array([se_b_new.get(i, np.nan) for i in ids])
    if rule != "robust_z" and np.isnan(se_o).all():
        se_o = np.zeros_like(se_o)  # an operational bank without SEs: its parameters are taken as known
    if rule != "robust_z" and not np.isfinite(se_o + se_n).all():
        raise CalibrationError(f"rule={rule!r} needs standard errors of b from the new calibration: pass a "
                               "calibration result (not a bank), or use rule='robust_z'")
    anchor = np.ones(len(ids), dtype=bool)
    seen: set[bytes] = set()  # anchor sets met before: purification can cycle between two sets
    rounds = 0
    while True:
        rounds += 1
        if rounds == 1:  # a robust start: IQRs and medians, so drifting items cannot pull the first link
            q_o, q_n = np.percentile(b_o, [25, 50, 75]), np.percentile(b_n, [25, 50, 75])
            big_a = float((q_o[2] - q_o[0]) / (q_n[2] - q_n[0])) if q_n[2] > q_n[0] else 1.0
            big_b = float(q_o[1] - big_a * q_n[1])
        else:  # mean-sigma on the purified anchors
            kept = link(bank_new, bank_old, method="mean-sigma", common=[i for i, a in zip(ids, anchor) if a])
            big_a, big_b = kept.A, kept.B
        b_star = big_a * b_n + big_b
        shift = b_star - b_o
        everyone = np.ones(len(ids), dtype=bool)  # median and IQR are robust already: over all common items
        rz = _robust_z(shift, everyone)
        rz_a = _robust_z((la_n - np.log(big_a)) - la_o, everyone)
        se_shift = np.sqrt(se_o ** 2 + (big_a * se_n) ** 2)
        with np.errstate(invalid="ignore", divide="ignore"):
            z_disp = shift / se_shift
        by_disp = np.abs(np.nan_to_num(z_disp)) > threshold
        by_rz = np.abs(rz) > threshold
        flagged = by_rz if rule == "robust_z" else by_disp if rule == "displacement" else by_rz | by_disp
        flagged_a = np.abs(rz_a) > threshold
        new_anchor = ~flagged
        if new_anchor.sum() < 3 or (rounds > 1 and np.array_equal(new_anchor, anchor)) or rounds >= max_rounds \
                or new_anchor.tobytes() in seen:
            break
        seen.add(anchor.tobytes())
        anchor = new_anchor
    return DriftResult(item_id=ids, b_old=b_o, b_new=b_star, shift=shift, se_shift=se_shift, z_displacement=z_disp,
                       robust_z=rz, robust_z_a=rz_a, flagged=flagged, flagged_a=flagged_a, anchor=anchor, A=big_a,
                       B=big_b, rounds=rounds, threshold=float(threshold))
