"""Fixed items and groups for ``calibrate(..., factors=...)``: anchors that keep their parameters (and so set the
latent scale: the means, variances and correlations of the factors they load on are estimated), and group codes
for a multiple-group calibration (the reference group N(0, R), the others' means and covariances free)."""

from __future__ import annotations

import numpy as np

from ..exceptions import CalibrationError

__all__ = ["fixed_items", "models_with_fixed", "fixed_pattern", "fixed_rows", "group_codes"]


def group_codes(groups, n: int, reference=None):
    """``(codes (N,) with the reference group 0, labels in code order)``; one group when ``groups`` is None."""
    if groups is None:
        return np.zeros(n, dtype=np.intp), ["all"]
    labels = np.asarray(groups, dtype=object)
    if labels.shape != (n,):
        raise CalibrationError(f"groups has {labels.size} labels for {n} response rows; give one per row")
    if any(v is None or (isinstance(v, float) and np.isnan(v)) for v in labels):
        raise CalibrationError("groups: some rows have no group label; give every row one")
    names = sorted({str(v) for v in labels})
    ref = names[0] if reference is None else str(reference)
    if ref not in names:
        raise CalibrationError(f"reference_group {reference!r} is not one of the groups {names[:10]}")
    order = [ref] + [g for g in names if g != ref]
    index = {g: q for q, g in enumerate(order)}
    codes = np.array([index[str(v)] for v in labels], dtype=np.intp)
    small = [g for g in order if (codes == index[g]).sum() < 2]
    if small:
        raise CalibrationError(f"groups {small[:5]} have fewer than 2 persons; merge or drop them")
    return codes, order


def fixed_items(fixed, ids) -> dict:
    """``{item id: (fixed bank, row)}`` for the data's items found in ``fixed`` (a MultidimBank)."""
    if fixed is None:
        return {}
    from ..bank.multidim import MultidimBank

    if not isinstance(fixed, MultidimBank):
        raise CalibrationError("with factors=, fixed is a MultidimBank (e.g. an earlier fit's .bank, or "
                               "MultidimBank.read_json(path)) whose factors are named as this model's")
    row = {iid: j for j, iid in enumerate(fixed.item_ids)}
    out = {iid: (fixed, row[iid]) for iid in ids if iid in row}
    nominal = [iid for iid, (b, j) in out.items() if b.models[j] == "nominal"]
    if nominal:
        raise CalibrationError(f"fixed items {nominal[:5]} are nominal; fixed-item calibration takes 2pl, 3pl, "
                               "graded and gpcm items")
    if not out:
        raise CalibrationError(f"none of the fixed bank's {len(fixed)} items is a column of the data; fixed-item "
                               "calibration needs anchor items in the data")
    return out


def models_with_fixed(model, ids, anchors):
    if not anchors:
        return model
    names = [model] * len(ids) if isinstance(model, str) else list(model)
    return [b.models[j] if iid in anchors else m for iid, m, (b, j) in
            zip(ids, names, [anchors.get(i, (None, 0)) for i in ids], strict=True)]


def fixed_pattern(pattern, ids, anchors, factor_names):
    """The fixed items' loadings: their nonzero slopes, by factor name (the fixed bank's factors must be this
    model's)."""
    pattern = pattern.copy()
    for iid, (b, j) in anchors.items():
        unknown = [f for f in b.factor_names if f not in factor_names]
        if unknown:
            raise CalibrationError(f"fixed bank factors {unknown} are not factors of this model "
                                   f"{list(factor_names)}; name the factors alike")
        row = ids.index(iid)
        pattern[row] = False
        for q, f in enumerate(b.factor_names):
            if b.phi[j, q] != 0:
                pattern[row, factor_names.index(f)] = True
    empty = [f for q, f in enumerate(factor_names) if not pattern[:, q].any()]
    if empty:
        raise CalibrationError(f"factors {empty} have no item loading on them (the fixed items' slopes on them are "
                               "0); give them items or drop them")
    return pattern


def fixed_rows(phi0, free, pattern, ids, anchors, factor_names, kinds):
    """Fixed items: their internal parameters in this model's layout, nothing free. Returns ``(phi0, free,
    mean_free)`` where ``mean_free`` marks the factors the fixed items load on (their means and variances are
    estimated; the others stay N(0, 1))."""
    from ..irt.linear import extra_column

    phi0, free = phi0.copy(), free.copy()
    k = len(factor_names)
    for iid, (b, j) in anchors.items():
        row = ids.index(iid)
        kb = b.n_dims
        phi0[row] = 0.0
        for q, f in enumerate(b.factor_names):
            phi0[row, factor_names.index(f)] = b.phi[j, q]
        c = int(b.n_cat[j])
        phi0[row, k:k + c - 1] = b.phi[j, kb:kb + c - 1]
        src_extra, dst_extra = extra_column(kb, b.phi.shape[1]), extra_column(k, phi0.shape[1])
        phi0[row, dst_extra] = b.phi[j, src_extra]
        free[row] = False
    is_fixed = np.array([i in anchors for i in ids])
    mean_free = pattern[is_fixed].any(axis=0)
    return phi0, free, mean_free


