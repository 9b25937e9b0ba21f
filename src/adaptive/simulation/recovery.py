"""Calibration studies: parameter recovery under a data-collection design.

For each replication, responses are generated from a "true" bank for ``n_persons`` simulees
(θ ~ N(0, 1)) under one of three designs, calibrated with :func:`adaptive.calibrate`, and the
estimates compared with the truth:

* ``complete`` -- everyone answers every item;
* ``forms`` -- spiraled forms sharing ``anchors`` anchor items (the rest dealt round-robin);
* ``cat`` -- every simulee takes an adaptive test with ``cat_design`` on the true bank, so the data
  are as sparse and as θ-dependent (missing at random given the answers) as operational CAT data.

Replication ``r`` of seed ``s`` draws from ``SeedSequence(s, spawn_key=(r,))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..bank import ItemBank
from ..cat.design import ExamDesign
from ..irt.registry import model_spec

__all__ = ["RecoveryResult", "forms_mask", "recovery_study", "online_recovery_study", "ONLINE_VARIANTS"]


def forms_mask(operational: np.ndarray, forms: int, anchors: int, rng: np.random.Generator) -> np.ndarray:
    """``(forms, I)`` booleans: ``anchors`` operational items evenly spaced through the bank on every form,
    every other item on one form (a random permutation dealt round-robin)."""
    operational = np.asarray(operational, dtype=bool)
    return _mask(np.flatnonzero(operational), operational.size, forms, anchors, rng)


def _mask(operational_idx, n_items, forms, anchors, rng):
    n_anchor = min(anchors, operational_idx.size) if forms > 1 else 0
    anchor = [int(operational_idx[k]) for k in np.linspace(0, operational_idx.size - 1, n_anchor).round().astype(int)]
    rest = [k for k in range(n_items) if k not in set(anchor)]
    rest = list(rng.permutation(rest))
    mask = np.zeros((forms, n_items), dtype=bool)
    mask[:, anchor] = True
    for j, k in enumerate(rest):
        mask[j % forms, k] = True
    return mask


@dataclass(frozen=True)
class RecoveryResult:
    """Per item and parameter: bias and RMSE over replications (NaN where an item was never estimable)."""

    item_ids: tuple[str, ...]
    parameters: tuple[str, ...]
    true: np.ndarray        # (P, I)
    estimates: np.ndarray   # (R, P, I)
    answered: np.ndarray    # (R, I) responses per item
    converged: np.ndarray   # (R,)

    @property
    def bias(self) -> np.ndarray:
        return np.nanmean(self.estimates - self.true[None], axis=0)

    @property
    def rmse(self) -> np.ndarray:
        return np.sqrt(np.nanmean((self.estimates - self.true[None]) ** 2, axis=0))

    def rows(self) -> list[dict]:
        """Tidy rows: one per parameter with the mean bias, mean RMSE and the RMSE over all estimates."""
        out = []
        for k, p in enumerate(self.parameters):
            err = self.estimates[:, k, :] - self.true[None, k, :]
            out.append({"parameter": p, "mean_bias": float(np.nanmean(err)),
                        "rmse": float(np.sqrt(np.nanmean(err**2))),
                        "mean_abs_bias_per_item": float(np.nanmean(np.abs(self.bias[k])))})
        return out


def _responses_from_cat(result, n_items: int) -> np.ndarray:
    x = np.full((result.sequence.shape[0], n_items), np.nan)
    given = result.sequence >= 0
    rows = np.broadcast_to(np.arange(result.sequence.shape[0])[:, None], result.sequence.shape)
    x[rows[given], result.sequence[given]] = result.response[given]
    return x


def recovery_study(bank: ItemBank, n_persons: int = 2000, design: str = "complete", *, replications: int = 5,
                   seed: int = 0, model: str | None = None, priors=None, forms: int = 3, anchors: int = 10,
                   cat_design: ExamDesign | None = None, quadrature: int = 61) -> RecoveryResult:
    """Generate, calibrate and compare, ``replications`` times (see the module docstring)."""
    from ..calibration import calibrate
    from ..cat.posthoc import simulate_cat
    from ..synthetic import simulate_responses

    if design not in ("complete", "forms", "cat"):
        raise ValueError(f"design {design!r}: choose 'complete', 'forms' or 'cat'")
    if design == "cat" and cat_design is None:
        raise ValueError("design 'cat' needs cat_design (an ExamDesign run on the true bank)")
    models = {it.model for it in bank.items}
    model = model or (models.pop() if len(models) == 1 else None)
    if model is None:
        raise ValueError("the bank mixes models; give model=")
    arr = bank.compile()
    dich = bool(np.all(arr.n_cat == 2))
    params = ("a", "b", "c") if model_spec(model).lower_asymptote else ("a", "b") if dich else ("a",) + tuple(
        f"b{k + 1}" for k in range(int(arr.n_cat.max()) - 1))
    locations = [arr.thresholds[:, 0]] if dich else [arr.thresholds[:, k] for k in range(len(params) - 1)]
    true = np.stack([arr.a] + locations + ([arr.c] if "c" in params else []))
    operational = np.array([it.status == "operational" for it in bank.items])
    est = np.full((replications, len(params), len(bank)), np.nan)
    answered = np.zeros((replications, len(bank)), dtype=np.int64)
    conv = np.zeros(replications, dtype=bool)
    for r in range(replications):
        ss = np.random.SeedSequence(seed, spawn_key=(r,))
        rng = np.random.default_rng(ss)
        theta = rng.normal(0.0, 1.0, n_persons)
        if design == "cat":
            assert cat_design is not None  # checked above
            res = simulate_cat(cat_design, bank, thetas=theta, keys=ss.spawn(1)[0].generate_state(n_persons, np.uint64))
            x = _responses_from_cat(res, len(bank))
        else:
            x = simulate_responses(arr, theta, rng=rng)
            if design == "forms":
                mask = forms_mask(operational, forms, anchors, rng)
                x[~mask[np.arange(n_persons) % forms]] = np.nan
        n_ans = (~np.isnan(x)).sum(axis=0)
        answered[r] = n_ans
        keep = n_ans >= 2
        fit = calibrate(x[:, keep], model=model, priors=priors, quadrature=quadrature,
                        item_ids=[bank.ids[i] for i in np.flatnonzero(keep)])
        conv[r] = fit.converged
        for j in np.flatnonzero(keep):
            par = fit.item_parameters(bank.ids[j])
            for k, p in enumerate(params):
                est[r, k, j] = par[p]
    return RecoveryResult(bank.ids, params, true, est, answered, conv)


#: the online-calibration variants an online recovery study compares (method, prior update); "FIPC" is
#: :func:`adaptive.calibrate` with the operational items fixed and the latent mean and SD estimated
ONLINE_VARIANTS = (("OEM", "NWU"), ("OEM", "MWU"), ("MEM", "NWU"), ("MEM", "OWU"), ("MEM", "MWU"),
                   ("stocking_a", "NWU"), ("FIPC", "normal"))


def online_recovery_study(design: ExamDesign, bank: ItemBank, per_item: int, *, replications: int = 3, seed: int = 0,
                          mean: float = 0.5, sd: float = 1.2, model: str = "2pl", priors=None,
                          variants=ONLINE_VARIANTS) -> list[dict]:
    """Pretest items seeded into adaptive tests and calibrated online, against their true parameters.

    ``bank`` is the true bank with its pretest items (status ``"pretest"``); each simulee (θ ~ N(mean, sd²), a
    population off the bank's N(0, 1) scale) takes ``design`` on it, which seeds ``design.pretest_items`` pretest
    items per test, and the number of simulees is chosen so that each pretest item is answered by about
    ``per_item`` of them. Every variant calibrates the pretest items from the same records, starting from
    placeholder parameters. Returns one row per (variant, replication): bias and RMSE of a and b, seconds.
    """
    import time

    from ..answers import Records
    from ..calibration import calibrate
    from ..calibration.online import online_calibrate
    from ..cat.posthoc import simulate_cat

    pretest = [it.id for it in bank.items if it.status == "pretest"]
    if not pretest or design.pretest_items < 1:
        raise ValueError("the bank needs pretest items and the design pretest_items >= 1")
    n_persons = int(np.ceil(per_item * len(pretest) / design.pretest_items))
    true_a = np.array([bank.items[bank.index[i]].a for i in pretest])
    true_b = np.array([bank.items[bank.index[i]].b for i in pretest])
    start = ItemBank(name=bank.name, blueprint=bank.blueprint, scaling=bank.scaling,
                     items=[it.model_copy(update={"a": 1.0, "b": 0.0, "c": 0.0}) if it.status == "pretest" else it
                            for it in bank.items])
    operational = [it.model_copy(update={"enemies": [], "enemy_groups": []}) for it in bank.items
                   if it.status != "pretest"]
    rows = []
    for r in range(replications):
        ss = np.random.SeedSequence(seed, spawn_key=(per_item, r))
        theta = np.random.default_rng(ss).normal(mean, sd, n_persons)
        res = simulate_cat(design, bank, thetas=theta, keys=ss.spawn(1)[0].generate_state(n_persons, np.uint64))
        rec = Records.from_cat(res, scored_only=False)
        for method, update in variants:
            t0 = time.perf_counter()
            if method == "FIPC":
                x = rec.dense()
                used = np.flatnonzero(np.isfinite(x).any(axis=0))
                ids = [bank.ids[j] for j in used]
                fit = calibrate(x[:, used], model=model, item_ids=ids, priors=priors,
                                fixed=ItemBank(items=[it for it in operational if it.id in set(ids)]))
                got = {it.id: it for it in fit.bank.items}
                a = np.array([got[i].a for i in pretest])
                b = np.array([got[i].b for i in pretest])
            else:
                fit = online_calibrate(start, rec, pretest, model=model, method=method, prior_update=update,
                                       priors=priors)
                a, b = fit.a, fit.b
            sec = time.perf_counter() - t0
            rows.append({"method": method if method in ("FIPC", "stocking_a") else f"{method}-{update}",
                         "per_item": per_item, "replication": r, "n_persons": n_persons,
                         "bias_a": float(np.mean(a - true_a)), "rmse_a": float(np.sqrt(np.mean((a - true_a) ** 2))),
                         "bias_b": float(np.mean(b - true_b)), "rmse_b": float(np.sqrt(np.mean((b - true_b) ** 2))),
                         "seconds": sec})
    return rows
