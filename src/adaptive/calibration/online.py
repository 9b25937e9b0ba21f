"""Online calibration of pretest items from adaptive-test data, with the operational items held fixed.

The methods of the fixed-item calibration literature (Wainer & Mislevy 1990; Stocking 1988; Kim 2006; Ban et al.
2001), named as in Kim (2006) and mirt's ``fixedCalib`` (``NEMC`` x ``PAU``):

* **OEM** (one EM cycle): each candidate's posterior over θ comes from the *operational* answers only; one
  M-step then fits every pretest item to the expected counts. Pretest items never inform θ.
* **MEM** (multiple EM cycles): starts from OEM, then iterates E-steps that use every answer (operational at
  their bank values, pretest at their current estimates) and M-steps for the pretest items until the pretest
  parameters stop moving (``tol``).
* **Prior weights update** of the quadrature weights of θ, estimated as the mean posterior (an empirical
  histogram, as Kim's "weights"): ``"NWU"`` never (the N(0, 1) prior of the bank's scale), ``"OWU"`` once (after
  the first E-step), ``"MWU"`` at every E-step. With a population that differs from the bank's reference
  population, only the updated priors keep the pretest items on the bank's scale.
* **Stocking's Method A**: each candidate's θ̂ (EAP from the operational answers, N(0, 1) prior) is taken as
  known, and the pretest items are fitted by ML at those θ̂ (a logistic regression for the 2PL). It ignores the
  error in θ̂, which flattens the slopes.

Standard errors are the M-step's (expected complete-data information at the final expected counts, by the delta
method on the IRT scale); they treat the posteriors as known and so run slightly small for OEM and MEM. The
result names every pretest item with its parameters, SEs and answer count, and writes them into the bank with
provenance (:meth:`OnlineCalibration.bank`).

Examples
--------
See ``simulations/online_calibration.py`` for a recovery study of every method through the adaptive engine.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field

import numpy as np
from scipy.special import logsumexp

from ..answers import Records
from ..bank import ItemBank
from ..exceptions import CalibrationError, ResponseValidationError
from ..irt.arrays import theta_grid
from ..irt.mixed import from_irt, internal_log_prob, irt_jacobian, to_irt
from ..irt.registry import Family, model_spec
from ..scoring.responses import checked_category_counts, invalid_responses_message
from ..tables import Table
from . import kernels
from .api import _free_mask, _models_for
from .em import Problem
from .priors import parse_priors
from .starts import start_values as _start_values

__all__ = ["OnlineCalibration", "online_calibrate", "METHODS", "PRIOR_UPDATES"]

METHODS = ("OEM", "MEM", "stocking_a")
PRIOR_UPDATES = ("NWU", "OWU", "MWU")


@dataclass(frozen=True)
class OnlineCalibration(Table):
    """Pretest item parameters from online calibration.

    Attributes
    ----------
    item_id; model; a, b, c : IRT parameters (c = 0 for 2PL items); se_a, se_b, se_c; n : answers
    method, prior_update : as requested; n_iter, converged : EM cycles (1 for OEM and Method A)
    weights, theta : the final prior weights of θ on the grid (N(0, 1) unless updated)
    """

    key = "item_id"
    column_names = ("item_id", "model", "a", "b", "c", "se_a", "se_b", "se_c", "n")
    item_id: tuple
    model: tuple
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    se_a: np.ndarray
    se_b: np.ndarray
    se_c: np.ndarray
    n: np.ndarray
    method: str = "MEM"
    prior_update: str = "MWU"
    n_iter: int = 1
    converged: bool = True
    theta: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    weights: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    def __repr__(self) -> str:
        mean = float(self.weights @ self.theta) if self.weights.size else 0.0
        return (f"OnlineCalibration({len(self.item_id)} pretest items by {self.method}"
                f"{'' if self.method == 'stocking_a' else '-' + self.prior_update}; {self.n_iter} cycle(s), "
                f"{'converged' if self.converged else 'NOT converged'}; prior mean {mean:+.3f})")

    def bank(self, operational: ItemBank, name: str | None = None, only=None) -> ItemBank:
        """``operational`` with the pretest items' parameters replaced (provenance records the method, the
        answer count and today's date); items not in this result (or not in ``only``) are unchanged."""
        index = {i: k for k, i in enumerate(self.item_id) if only is None or i in set(only)}
        label = self.method if self.method == "stocking_a" else f"{self.method}-{self.prior_update}"
        items: list = []
        for it in operational.items:
            k = index.get(it.id)
            if k is None:
                items.append(it)
                continue
            rec = it.model_dump(exclude_defaults=True)
            rec.update(model=self.model[k], a=float(self.a[k]), b=float(self.b[k]), c=float(self.c[k]),
                       provenance={"method": f"online calibration {label} ({self.model[k]})", "software": "adaptive",
                                   "sample_size": int(np.maximum(self.n[k], 1)), "date": _dt.date.today()})
            items.append(rec)
        return ItemBank(name=name or operational.name, version=operational.version, scaling=operational.scaling,
                        blueprint=operational.blueprint, items=items)


def _matrix(bank: ItemBank, responses):
    """(values (N, J), column item ids) for the items answered, from Records or an (N, I) matrix."""
    if isinstance(responses, Records):
        cols = np.flatnonzero(np.bincount(responses.item, minlength=responses.n_items) > 0)
        pos = np.full(responses.n_items, -1)
        pos[cols] = np.arange(cols.size)
        values = np.full((responses.n_persons, cols.size), np.nan)
        values[responses.person, pos[responses.item]] = responses.category
    else:
        x = np.asarray(responses, dtype=float)
        if x.ndim != 2 or x.shape[1] != len(bank):
            raise CalibrationError(f"responses have shape {x.shape}; give Records or an (N, {len(bank)}) matrix in "
                                   "the bank's item order")
        cols = np.flatnonzero(np.isfinite(x).any(axis=0))
        values = x[:, cols]
    ids = [bank.ids[c] for c in cols]
    checked_category_counts(values, ids)  # every answered cell a whole-number category, or a row/item error
    return values, ids


def online_calibrate(bank: ItemBank, responses, pretest=None, *, model="2pl", method: str = "MEM",
                     prior_update: str = "MWU", priors=None, quadrature: int = 61, bounds=(-6.0, 6.0),
                     tol: float = 1e-4, max_iter: int = 500) -> OnlineCalibration:
    """Calibrate ``pretest`` items (ids; default the bank's items with status ``"pretest"``) from ``responses``
    (:class:`~adaptive.answers.Records` with the pretest answers, or an ``(N, I)`` matrix in bank order) with
    every other answered item fixed at its bank parameters; see the module docstring.

    ``model``: the pretest items' model (a name, or ``{id: name}``); ``priors``: as :func:`calibrate`'s (e.g.
    ``"3pl"`` for a prior on c).
    """
    if method not in METHODS:
        raise CalibrationError(f"method={method!r}: use one of {', '.join(METHODS)}")
    if prior_update not in PRIOR_UPDATES:
        raise CalibrationError(f"prior_update={prior_update!r}: use one of {', '.join(PRIOR_UPDATES)}")
    values, ids = _matrix(bank, responses)
    if pretest is None:
        pretest = [it.id for it in bank.items if it.status == "pretest"]
    pretest_set = set(pretest)
    unknown = [i for i in pretest_set if i not in bank.index]
    if unknown:
        raise CalibrationError(f"{len(unknown)} pretest id(s) are not in the bank, e.g. {sorted(unknown)[:5]}")
    is_pre = np.array([i in pretest_set for i in ids])
    if not is_pre.any():
        raise CalibrationError("none of the pretest items was answered; export the responses with the pretest "
                               "answers (include_pretest=True)")
    if is_pre.all():
        raise CalibrationError("no operational item was answered: online calibration needs fixed items to put "
                               "the pretest items on the bank's scale")
    # the answered items alone (enemy links point outside this subset and mean nothing to calibration)
    items = [bank.items[bank.index[i]].model_copy(update={"enemies": [], "enemy_groups": []}) for i in ids]
    pre_models = _models_for(model, [i for i, p in zip(ids, is_pre, strict=True) if p], {})
    models, k = [], 0
    for it, p in zip(items, is_pre, strict=True):
        if p:
            models.append(pre_models[k])
            k += 1
        else:
            models.append(it.model)
    family = np.array([model_spec(m).family for m in models])
    observed = np.nanmax(np.where(np.isnan(values), 0, values), axis=0).astype(int) + 1
    n_cat = ItemBank(items=items, scaling=bank.scaling).compile().n_cat.copy()  # the operational items' categories
    n_cat[is_pre] = np.where(family[is_pre] == Family.DICHOTOMOUS, 2, np.maximum(observed[is_pre], 2))
    with np.errstate(invalid="ignore"):
        beyond = values > (n_cat - 1)[None, :]  # e.g. a 2 on a 0/1 item: a row/item error, not a silent miscount
    if beyond.any():
        raise ResponseValidationError(invalid_responses_message(values, beyond, ids, n_cat))
    priors_d = parse_priors(priors)
    phi0 = _start_values(values, models, n_cat, priors_d)
    free, tied = _free_mask(models, n_cat, phi0.shape[1])
    fixed_bank = ItemBank(items=[it for it, p in zip(items, is_pre, strict=True) if not p], scaling=bank.scaling)
    arr = fixed_bank.compile()
    phi0[~is_pre] = from_irt(family[~is_pre], n_cat[~is_pre], arr.a, arr.thresholds, arr.c, arr.d, phi0.shape[1])
    free[~is_pre] = False
    tied[:] = False
    theta = theta_grid((float(bounds[0]), float(bounds[1]), int(quadrature)))
    groups = np.zeros(values.shape[0], dtype=int)
    problem = Problem(values, family, n_cat, phi0, free, tied, theta, groups, np.array([[0.0, 1.0]]),
                      np.zeros((1, 2), dtype=bool), priors_d)
    log_w = -0.5 * theta ** 2
    log_w -= logsumexp(log_w)

    def estep(phi, lw, operational_only):
        logp = internal_log_prob(family, n_cat, phi, theta)
        if operational_only:
            logp = logp.copy()
            logp[is_pre] = 0.0  # a pretest answer says nothing about θ
        post, _ = problem.layout.posterior(logp, lw[None, :])
        r, g_mass = problem.counts(post)
        return r, np.log(np.maximum(g_mass[0] / g_mass[0].sum(), 1e-300))

    phi = phi0.copy()
    n_iter, converged = 1, True
    if method == "stocking_a":
        r = _stocking_counts(problem, values, family, n_cat, phi, theta, log_w, is_pre)
        phi = problem.mstep_items(phi, r)
        weights = np.exp(log_w)
    else:
        r, lw_post = estep(phi, log_w, True)
        if prior_update in ("OWU", "MWU"):
            log_w = lw_post
            r, lw_post = estep(phi, log_w, True)
        if prior_update == "MWU" and method == "OEM":
            for _ in range(min(max_iter, 200)):  # the operational answers' own empirical histogram
                if np.max(np.abs(np.exp(lw_post) - np.exp(log_w))) < 1e-5:
                    break
                log_w = lw_post
                r, lw_post = estep(phi, log_w, True)
        phi = problem.mstep_items(phi, r)
        if method == "MEM":
            converged = False
            for n_iter in range(2, max_iter + 1):  # noqa: B007 - the count is reported
                r, lw_post = estep(phi, log_w, False)
                if prior_update == "MWU":
                    log_w = lw_post
                new = problem.mstep_items(phi, r)
                change = float(np.max(np.abs(new[free] - phi[free]))) if free.any() else 0.0
                phi = new
                if change < tol:
                    converged = True
                    break
            r, _ = estep(phi, log_w, False)
        weights = np.exp(log_w)
    return _result(phi, r, problem, family, n_cat, theta, ids, models, is_pre, values, free, method, prior_update,
                   n_iter, converged, weights)


def _stocking_counts(problem, values, family, n_cat, phi, theta, log_w, is_pre):
    """Method A: counts at each candidate's EAP θ̂ from the operational answers, on a fine grid (0.01 logit)."""
    logp = internal_log_prob(family, n_cat, phi, theta).copy()
    logp[is_pre] = 0.0
    post, _ = problem.layout.posterior(logp, log_w[None, :])
    eap = post @ theta
    fine = np.round(np.clip(eap, theta[0], theta[-1]), 2)
    nodes, node_of = np.unique(fine, return_inverse=True)
    point = np.zeros((values.shape[0], nodes.size))
    point[np.arange(values.shape[0]), node_of.ravel()] = 1.0
    problem.theta = nodes  # the M-step's nodes: the persons' θ̂ (the layout keeps its own grid)
    r, _ = problem.counts(point)
    return r


def _result(phi, r, problem, family, n_cat, theta, ids, models, is_pre, values, free, method, prior_update,
            n_iter, converged, weights) -> OnlineCalibration:
    rows = np.flatnonzero(is_pre)
    a, thr, c, _d = to_irt(family[rows], n_cat[rows], phi[rows])
    _, fisher = kernels.general_grad_curv(phi[rows], r[rows], problem.theta, family[rows], n_cat[rows], False)
    jac = irt_jacobian(family[rows], n_cat[rows], phi[rows])
    p = phi.shape[1]
    se = np.full((rows.size, p + 2), np.nan)
    for k in range(rows.size):  # one small matrix per pretest item
        f = free[rows[k]]
        info = fisher[k][np.ix_(f, f)]
        try:
            cov = np.linalg.inv(info)
        except np.linalg.LinAlgError:
            continue
        j = jac[k][:, f]
        se[k] = np.sqrt(np.maximum(np.diag(j @ cov @ j.T), 0.0))
    has_c = np.array([model_spec(models[i]).lower_asymptote for i in rows])
    return OnlineCalibration(
        item_id=tuple(ids[i] for i in rows), model=tuple(models[i] for i in rows), a=np.asarray(a, dtype=float),
        b=np.asarray(thr[:, 0], dtype=float), c=np.asarray(c, dtype=float), se_a=se[:, 0], se_b=se[:, 1],
        se_c=np.where(has_c, se[:, p], np.nan), n=np.isfinite(values[:, rows]).sum(axis=0), method=method,
        prior_update=prior_update, n_iter=int(n_iter), converged=bool(converged), theta=theta,
        weights=weights / weights.sum())
