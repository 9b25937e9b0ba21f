"""The frozen result of a calibration."""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ..bank import Item, ItemBank, Provenance
from ..exceptions import CalibrationError
from ..irt.mixed import internal_log_prob, to_irt
from ..irt.registry import model_spec
from ..resources import package_version
from .em import EMState, Problem

__all__ = ["CalibrationResult", "FittedModel"]


@dataclass(frozen=True, eq=False)
class FittedModel:
    """A fitted calibration on its internal scale.

    Attributes
    ----------
    problem : :class:`~adaptive.calibration.em.Problem` -- the data (``problem.layout``: values, mask,
        categories, groups), the parameter vector (``problem.params``: free entries, pack/unpack, names),
        the item families, category counts, quadrature nodes (``problem.theta``) and priors
    x : (P,) the estimated free-parameter vector (the point EM converged to)
    phi : (I, p) internal item parameters (slope-intercept; see :mod:`adaptive.irt.registry`)
    latent : (G, 2) latent mean and SD of each group
    """

    problem: Problem
    x: np.ndarray
    phi: np.ndarray
    latent: np.ndarray

    def log_prob(self, theta=None) -> np.ndarray:
        """Category log-probabilities ``(I, Q, K)`` at ``theta`` (default: the quadrature nodes)."""
        pr = self.problem
        return internal_log_prob(pr.family, pr.n_cat, self.phi, pr.theta if theta is None else np.asarray(theta, float))

    def posterior(self) -> tuple[np.ndarray, float]:
        """Posterior weights of every response row on the nodes ``(N, Q)``, and the marginal log-likelihood."""
        return self.problem.posterior(self.log_prob(), self.latent)


class InformationCriteria:
    """AIC and BIC of a fit with ``loglik``, ``n_parameters`` and ``n_persons``."""

    loglik: float

    @property
    def aic(self) -> float:
        return -2.0 * self.loglik + 2.0 * self.n_parameters  # type: ignore[attr-defined]

    @property
    def bic(self) -> float:
        return -2.0 * self.loglik + self.n_parameters * math.log(self.n_persons)  # type: ignore[attr-defined]


@dataclass(frozen=True, eq=False)
class CalibrationResult(InformationCriteria):
    """What :func:`adaptive.calibrate` returns (immutable; derived quantities are computed on first use).

    Attributes
    ----------
    item_ids, models : per item
    a, thresholds, c, d : IRT parameters (``thresholds[:, 0]`` is ``b`` for dichotomous items)
    latent : (G, 2) mean and SD of each group's latent distribution; ``group_labels`` names them
    loglik : marginal log-likelihood at the estimates (without the log prior)
    converged, n_iter (EM cycles), n_estep (E-steps, including SQUAREM's), trace (log-likelihood per E-step)
    n_persons : persons with at least one response; n_parameters : free parameters
    """

    item_ids: tuple
    models: tuple
    n_cat: np.ndarray
    a: np.ndarray
    thresholds: np.ndarray
    c: np.ndarray
    d: np.ndarray
    latent: np.ndarray
    group_labels: tuple
    loglik: float
    converged: bool
    n_iter: int
    n_estep: int
    trace: tuple
    n_persons: int
    n_parameters: int
    elapsed: float
    quadrature: np.ndarray
    priors: dict
    person_ids: tuple = field(repr=False)
    name: str = "calibrated"
    _problem: Problem | None = field(default=None, repr=False)
    _state: EMState | None = field(default=None, repr=False)
    _fixed_items: dict = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, *, problem, state, ids, person_ids, models, fixed_items, group_labels, priors, settings, elapsed,
              name):
        phi, latent = problem.params.unpack(state.x)
        a, thr, c, d = to_irt(problem.family, problem.n_cat, phi)
        answered = problem.layout.mask.any(axis=1)
        return cls(item_ids=tuple(ids), models=tuple(models), n_cat=problem.n_cat.copy(), a=a, thresholds=thr, c=c,
                   d=d, latent=latent, group_labels=tuple(group_labels), loglik=float(state.loglik),
                   converged=bool(state.converged), n_iter=int(state.n_iter), n_estep=int(state.n_estep),
                   trace=tuple(float(v) for v in state.trace), n_persons=int(answered.sum()),
                   n_parameters=int(problem.params.n_free), elapsed=float(elapsed), quadrature=problem.theta.copy(),
                   priors=dict(priors), person_ids=tuple(person_ids), name=name, _problem=problem, _state=state,
                   _fixed_items=dict(fixed_items))

    @property
    def fitted(self) -> FittedModel:
        """The fitted model on the internal scale: what standard errors, fit statistics and the scikit-learn
        estimator compute from (see :class:`FittedModel`)."""
        if self._problem is None or self._state is None:
            raise CalibrationError(f"calibration {self.name!r} carries no fitted model (it was built from "
                                   "parameters alone); run adaptive.calibrate on the data")
        phi, latent = self._problem.params.unpack(self._state.x)
        return FittedModel(self._problem, self._state.x, phi, latent)

    # ------------------------------------------------------------------ parameters
    def item_parameters(self, item_id: str) -> dict:
        """IRT parameters of one item: ``{"a", "b", "c", "d"}`` or ``{"a", "b1", ...}``."""
        i = self.item_ids.index(item_id)
        if model_spec(self.models[i]).dichotomous:
            return {"a": float(self.a[i]), "b": float(self.thresholds[i, 0]), "c": float(self.c[i]),
                    "d": float(self.d[i])}
        k = int(self.n_cat[i]) - 1
        out = {"a": float(self.a[i])}
        out.update({f"b{t + 1}": float(self.thresholds[i, t]) for t in range(k)})
        return out

    @cached_property
    def bank(self) -> ItemBank:
        """The calibrated items as an :class:`~adaptive.ItemBank` with provenance (fixed items unchanged)."""
        bad = [f"{iid} (a = {self.a[i]:.3f})" for i, iid in enumerate(self.item_ids)
               if iid not in self._fixed_items and not self.a[i] > 0]
        if bad:
            raise CalibrationError(f"{len(bad)} item(s) have a slope <= 0, which a bank cannot hold: {bad[:10]}; such "
                                   "items discriminate the wrong way (check their keys) -- drop or re-key them and "
                                   "recalibrate")
        answered = self.fitted.problem.layout.mask.sum(axis=0)
        nodes = self.quadrature
        prior_txt = ""
        if self.priors:
            prior_txt = ", MAP with priors " + ", ".join(f"{k} ~ {v}" for k, v in self.priors.items())
        items = []
        for i, iid in enumerate(self.item_ids):
            if iid in self._fixed_items:
                items.append(self._fixed_items[iid])
                continue
            m = self.models[i]
            prov = Provenance(
                method=f"MML-EM {m} ({nodes.size} quadrature points on [{nodes[0]:g}, {nodes[-1]:g}]{prior_txt})",
                software=f"adaptive {_version()}", sample_size=int(max(answered[i], 1)), date=_dt.date.today(),
                note=f"log-likelihood {self.loglik:.3f}; {'converged' if self.converged else 'NOT converged'} after "
                     f"{self.n_iter} EM cycles",
            )
            rec = {"id": iid, "model": m, "a": float(self.a[i]), "provenance": prov}
            spec = model_spec(m)
            if spec.dichotomous:
                rec.update(b=float(self.thresholds[i, 0]), c=float(self.c[i]), d=float(self.d[i]))
            else:
                rec["thresholds"] = [float(v) for v in self.thresholds[i, : int(self.n_cat[i]) - 1]]
            if spec.slope == "fixed":
                rec["a"] = 1.0
            items.append(Item(**rec))
        return ItemBank(name=self.name, items=items)

    # ------------------------------------------------------------------ errors and fit
    @cached_property
    def standard_errors(self):
        """Oakes (observed-information) standard errors; see :func:`se` for the other methods."""
        return self.se("oakes")

    def se(self, method: str = "oakes"):
        """Standard errors by ``"oakes"``, ``"crossprod"`` or ``"sandwich"``; see :mod:`adaptive.calibration.se`."""
        from .se import standard_errors

        if method == "oakes" and "standard_errors" in self.__dict__:
            return self.__dict__["standard_errors"]
        return standard_errors(self, method)

    def item_fit(self, **kwargs):
        """Item fit (S-X2, infit, outfit); see :class:`adaptive.calibration.fit.ItemFit`."""
        from .fit import item_fit

        return item_fit(self, **kwargs)

    def person_fit(self, **kwargs):
        """Person fit lz per response row; see :func:`adaptive.calibration.fit.person_fit`."""
        from .fit import person_fit

        return person_fit(self, **kwargs)

    def m2(self):
        """Maydeu-Olivares & Joe's M2 (0/1 items) or Cai & Hansen's M2* (polytomous items) with RMSEA, SRMSR, CFI
        and TLI, on complete data; see :mod:`adaptive.calibration.m2`."""
        from .m2 import m2_statistic

        layout = self.fitted.problem.layout
        grid = self.fitted.problem.theta
        values = np.where(layout.mask, layout.values, np.nan)
        return m2_statistic(self.bank, values, grid=grid)

    def theta(self):
        """EAP ability and posterior SD of every response row under the fitted model and its group's prior."""
        fitted = self.fitted
        post, _ = fitted.posterior()
        nodes = fitted.problem.theta
        mean = post @ nodes
        sd = np.sqrt(np.maximum(post @ nodes ** 2 - mean ** 2, 0.0))
        return mean, sd

    # ------------------------------------------------------------------ report
    def summary(self, se: bool = True, fit: bool = True) -> str:
        """A text report: run facts, latent distribution, one row per item with SEs and fit flags."""
        lines = [
            f"Calibration {self.name!r}: {len(self.item_ids)} items, {self.n_persons} persons, "
            f"{self.quadrature.size} quadrature points on [{self.quadrature[0]:g}, {self.quadrature[-1]:g}]",
            f"log-likelihood {self.loglik:.3f}   AIC {self.aic:.1f}   BIC {self.bic:.1f}   free parameters "
            f"{self.n_parameters}",
            f"{'converged' if self.converged else 'NOT CONVERGED'} after {self.n_iter} EM cycles ({self.n_estep} "
            f"E-steps, SQUAREM) in {self.elapsed:.2f} s",
        ]
        if self.priors:
            lines.append("priors: " + ", ".join(f"{k} ~ {v}" for k, v in self.priors.items()))
        for g, label in enumerate(self.group_labels):
            lines.append(f"latent distribution ({label}): mean {self.latent[g, 0]:.3f}, SD {self.latent[g, 1]:.3f}")
        ses = None
        se_note = ""
        if se:
            try:
                ses = self.standard_errors.items
            except CalibrationError as err:
                se_note = f"standard errors unavailable: {err}"
        flags = {}
        if fit:
            for row in self.item_fit():
                f = []
                if row["p_sx2"] is not None and row["p_sx2"] < 0.01:
                    f.append("S-X2 p<.01")
                if not 0.7 <= row["infit"] <= 1.3:
                    f.append("infit")
                if not 0.7 <= row["outfit"] <= 1.3:
                    f.append("outfit")
                flags[row["item_id"]] = ",".join(f)
        lines.append("")
        head = f"{'item':<14}{'model':<7}{'a':>8}{'se':>7}  {'b / thresholds (se)':<38}{'c':>7}{'se':>7}  flags"
        lines.append(head)
        lines.append("-" * len(head))
        for i, iid in enumerate(self.item_ids):
            e = (ses or {}).get(iid, {})
            par = self.item_parameters(iid)
            fixed = iid in self._fixed_items

            def fmt_se(key, e=e, fixed=fixed):
                v = e.get(key)
                return f"{v:7.3f}" if v is not None else ("  fixed" if fixed else "      -")

            spec = model_spec(self.models[i])
            if spec.dichotomous:
                bpart = f"{par['b']:8.3f} ({fmt_se('b').strip()})"
                cpart = f"{par['c']:7.3f}{fmt_se('c')}" if spec.lower_asymptote else f"{'':7}{'':7}"
            else:
                bpart = " ".join(f"{par[f'b{t + 1}']:.2f}" for t in range(int(self.n_cat[i]) - 1))
                cpart = f"{'':7}{'':7}"
            lines.append(f"{iid:<14}{self.models[i]:<7}{par['a']:8.3f}{fmt_se('a')}  {bpart:<38}{cpart}  "
                         f"{flags.get(iid, '')}")
        if se_note:
            lines.append(se_note)
        if fit:
            lines.append("flags: S-X2 p<.01 (Orlando-Thissen item fit), infit/outfit outside [0.7, 1.3]")
        return "\n".join(lines)


def _version() -> str:
    return package_version()
