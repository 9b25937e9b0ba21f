"""Linking two separate calibrations through common items: mean-mean, mean-sigma, Haebara, Stocking-Lord.

The constants put the *source* scale on the *target* scale: ``θ_target = A θ_source + B``; item
parameters transform as ``a* = a / A``, ``b* = A b + B`` (every threshold/step alike), ``c`` and ``d``
unchanged (Kolen & Brennan 2014, ch. 6).

* mean-mean: ``A = mean(a_source) / mean(a_target)``, ``B = mean(b_target) - A mean(b_source)``;
* mean-sigma: ``A = sd(b_target) / sd(b_source)`` and the same ``B``;
* Haebara: minimizes ``Σ_q w_q Σ_i Σ_k [P_ik(θ_q; target) - P_ik(θ_q; transformed source)]²``;
* Stocking-Lord: minimizes ``Σ_q w_q [Σ_i E_i(θ_q; target) - Σ_i E_i(θ_q; transformed source)]²``;

both over ``grid`` (default 61 points on [-4, 4] on the target scale) with N(0, 1) weights, started from
mean-sigma. ``b`` statistics use every threshold of the common items (polytomous items included).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.stats import norm

from ..bank import ItemBank, theta_grid
from ..exceptions import CalibrationError
from ..irt.registry import model_spec

__all__ = ["link", "LinkingResult", "transform_bank", "METHODS"]

METHODS = ("mean-mean", "mean-sigma", "haebara", "stocking-lord")


@dataclass(frozen=True)
class LinkingResult:
    """``A``, ``B`` (θ_target = A θ_source + B), the method, the common items and the transformed source bank."""

    A: float
    B: float
    method: str
    common: tuple
    transformed: ItemBank
    criterion: float = 0.0

    def __repr__(self) -> str:  # the transformed bank is summarized, not printed item by item
        return (f"LinkingResult(method={self.method!r}, A={self.A:.6g}, B={self.B:.6g}, common={len(self.common)} "
                f"items, criterion={self.criterion:.6g}, transformed=<bank {self.transformed.name!r}, "
                f"{len(self.transformed)} items>)")


def _as_bank(obj) -> ItemBank:
    if isinstance(obj, ItemBank):
        return obj
    if hasattr(obj, "bank"):
        return obj.bank
    raise CalibrationError(f"linking needs ItemBanks or calibration results, not {type(obj).__name__}")


def transform_bank(bank: ItemBank, A: float, B: float) -> ItemBank:
    """The bank's items on the new scale ``θ* = A θ + B``."""
    if not (np.isfinite(A) and A > 0 and np.isfinite(B)):
        raise CalibrationError(f"linking constants must be finite with A > 0; got A={A}, B={B}")
    items = []
    for it in bank.items:
        fixed_slope = model_spec(it.model).slope == "fixed"
        upd: dict[str, Any] = {"a": it.a / A if not fixed_slope else it.a}
        if fixed_slope and A != 1.0:
            # a fixed-slope model cannot absorb A: the item becomes its free-slope counterpart
            upd = {"a": it.a / A, "model": "2pl" if it.model == "rasch" else "gpcm"}
        if it.b is not None:
            upd["b"] = A * it.b + B
        if it.thresholds is not None:
            upd["thresholds"] = [A * t + B for t in it.thresholds]
        items.append(it.model_copy(update=upd))
    data = bank.model_dump()
    data["items"] = [i.model_dump() for i in items]
    return ItemBank(**data)


def _b_values(bank, ids):
    out = []
    for i in ids:
        it = bank.item(i)
        out.extend([it.b] if it.b is not None else list(it.thresholds))
    return np.array(out)


def link(source, target, method: str = "stocking-lord", *, common=None, grid=None, weights=None) -> LinkingResult:
    """Linking constants putting ``source`` on the scale of ``target`` through their common items.

    Parameters
    ----------
    source, target : ItemBank or CalibrationResult
    method : "mean-mean", "mean-sigma", "haebara" or "stocking-lord"
    common : ids of the anchor items (default: every id in both banks)
    grid : θ points on the target scale for the characteristic-curve methods (default 61 on [-4, 4])
    weights : weights of the grid points (default N(0, 1) density, normalized)
    """
    method = method.lower().replace("_", "-")
    if method not in METHODS:
        raise CalibrationError(f"unknown linking method {method!r}; choose one of {list(METHODS)}")
    src, tgt = _as_bank(source), _as_bank(target)
    ids = tuple(common) if common is not None else tuple(i for i in src.ids if i in tgt.index)
    missing = [i for i in ids if i not in src.index or i not in tgt.index]
    if missing:
        raise CalibrationError(f"common items {missing[:10]} are not in both banks")
    if len(ids) < 2:
        raise CalibrationError(f"linking needs at least 2 common items; found {len(ids)}")
    for i in ids:
        if src.item(i).model != tgt.item(i).model or src.item(i).n_cat != tgt.item(i).n_cat:
            raise CalibrationError(f"common item {i!r} has model {src.item(i).model} ({src.item(i).n_cat} categories) "
                                   f"in the source but {tgt.item(i).model} ({tgt.item(i).n_cat}) in the target")
    bs, bt = _b_values(src, ids), _b_values(tgt, ids)
    a_s = np.array([src.item(i).a for i in ids])
    a_t = np.array([tgt.item(i).a for i in ids])
    B_of = lambda A: float(bt.mean() - A * bs.mean())  # noqa: E731
    if method == "mean-mean":
        A = float(a_s.mean() / a_t.mean())
        res = LinkingResult(A, B_of(A), method, ids, transform_bank(src, A, B_of(A)))
        return res
    if bs.std() == 0:
        raise CalibrationError("the common items' b values do not vary in the source; mean-sigma is undefined")
    A0 = float(bt.std() / bs.std())
    if method == "mean-sigma":
        return LinkingResult(A0, B_of(A0), method, ids, transform_bank(src, A0, B_of(A0)))
    pts = theta_grid(grid if grid is not None else (-4.0, 4.0, 61))
    w = norm.pdf(pts) if weights is None else np.asarray(weights, dtype=float)
    w = w / w.sum()
    arr_s = ItemBank(items=[src.item(i) for i in ids], scaling=src.scaling).compile()
    arr_t = ItemBank(items=[tgt.item(i) for i in ids], scaling=tgt.scaling).compile()
    p_t = arr_t.prob(pts)  # (Q, I, K)
    e_t = arr_t.expected_score(pts).sum(axis=1)

    def loss(v):
        A, B = v
        if A <= 0:
            return 1e10
        th = (pts - B) / A  # the source scale point that maps to each target point
        if method == "haebara":
            return float(w @ ((p_t - arr_s.prob(th)) ** 2).sum(axis=(1, 2)))
        return float(w @ (e_t - arr_s.expected_score(th).sum(axis=1)) ** 2)

    opt = minimize(loss, x0=[A0, B_of(A0)], method="Nelder-Mead",
                   options={"xatol": 1e-10, "fatol": 1e-16, "maxiter": 4000})
    opt = minimize(loss, x0=opt.x, method="BFGS", options={"gtol": 1e-12})
    A, B = (float(v) for v in opt.x)
    return LinkingResult(A, B, method, ids, transform_bank(src, A, B), float(opt.fun))
