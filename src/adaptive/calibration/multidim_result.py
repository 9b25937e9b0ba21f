"""The frozen result of a multidimensional or nominal calibration (:func:`adaptive.calibrate` with ``factors=``
or ``model="nominal"``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ..bank.multidim import MultidimBank
from ..exceptions import CalibrationError
from ..irt.linear import LinearKind
from ..tables import Table
from .bifactor import BifactorProblem
from .multidim import LinearProblem
from .result import InformationCriteria
from .rotation import Rotation, rotate_loadings

__all__ = ["MultidimResult", "MultidimStandardErrors", "standardized_loadings"]

#: logistic-to-normal-ogive scaling used for factor loadings (as mirt's ``summary``)
_D = 1.702


def standardized_loadings(slopes, cov) -> np.ndarray:
    """Factor loadings ``(I, K)`` of slopes on the logistic metric with latent covariance ``cov``:
    ``λ = (a / 1.702) / sqrt(1 + (a / 1.702)' Σ (a / 1.702))``."""
    a = np.asarray(slopes, dtype=float) / _D
    denom = np.sqrt(1.0 + np.einsum("ik,kl,il->i", a, np.asarray(cov, dtype=float), a))
    return a / denom[:, None]


@dataclass(frozen=True)
class MultidimStandardErrors(Table):
    """Standard errors (observed information by Oakes' identity): ``slopes (I, K)``, ``intercepts (I, C-1)``,
    ``correlations (K, K)`` (the estimated entries of the latent covariance: correlations, and with fixed items
    covariances and variances) and ``means (K,)``; NaN where a parameter is fixed. ``covariance`` and ``names``
    are those of the free parameters."""

    key = "item_id"
    item_id: tuple
    slopes: np.ndarray
    intercepts: np.ndarray
    correlations: np.ndarray
    names: tuple
    covariance: np.ndarray
    means: np.ndarray | None = None
    #: multiple groups: ``{label: {"cov": (K, K), "mean": (K,)}}`` SEs of each group's latent moments
    groups: dict | None = None

    def columns(self) -> dict:
        cols: dict = {"item_id": list(self.item_id)}
        for k in range(self.slopes.shape[1]):
            cols[f"SE_a{k + 1}"] = self.slopes[:, k]
        for k in range(self.intercepts.shape[1]):
            cols[f"SE_d{k + 1}" if self.intercepts.shape[1] > 1 else "SE_d"] = self.intercepts[:, k]
        return cols


@dataclass(frozen=True, eq=False)
class MultidimResult(InformationCriteria):
    """A fitted multidimensional (or nominal) model.

    Attributes
    ----------
    item_ids, person_ids, factor_names, models : labels
    kind, n_cat : (I,) model kinds (:class:`~adaptive.irt.linear.LinearKind`) and category counts
    phi : (I, p) internal parameters (:mod:`adaptive.irt.linear`)
    latent_cov : (K, K) latent covariance (means 0, variances 1: off-diagonals are the latent correlations; with
        fixed items, the estimated covariance of the factors they load on), latent_mean : (K,) means
    loglik : marginal log-likelihood on the quadrature grid; n_iter, converged : EM's report
    exploratory : whether the slopes carry the exploratory identification (rotate before reading them)
    integration : how the latent space was integrated (e.g. ``"product grid 31 x 31 = 961 nodes on [-6, 6]"``)
    """

    item_ids: tuple
    person_ids: tuple
    factor_names: tuple
    models: tuple
    kind: np.ndarray
    n_cat: np.ndarray
    phi: np.ndarray
    latent_cov: np.ndarray
    loglik: float
    n_iter: int
    converged: bool
    exploratory: bool
    integration: str
    elapsed: float
    problem: LinearProblem | BifactorProblem = field(repr=False)
    x: np.ndarray = field(repr=False)
    #: (K,) latent means (0 unless fixed items set the scale)
    latent_mean: np.ndarray | None = None
    #: multiple groups: ``{label: {"mean", "cov", "n"}}`` (the first the reference group, whose latent_mean and
    #: latent_cov the fields above hold), and each response row's group label
    groups: dict | None = None
    person_groups: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_dims(self) -> int:
        return len(self.factor_names)

    @property
    def n_persons(self) -> int:
        return len(self.person_ids)

    @property
    def slopes(self) -> np.ndarray:
        """``(I, K)`` slopes ``a1..aK`` (nominal items: mirt's ``a1``; see :meth:`nominal_parameters`)."""
        if (self.kind == LinearKind.NOMINAL).any():
            return self.bank.slopes
        return self.phi[:, :self.n_dims].copy()

    @property
    def intercepts(self) -> np.ndarray:
        """``(I, C-1)`` intercepts ``d`` / ``d1..`` (NaN where an item has fewer categories)."""
        return self.bank.intercepts

    @property
    def latent_correlations(self) -> np.ndarray:
        sd = np.sqrt(np.diag(self.latent_cov))
        return self.latent_cov / np.outer(sd, sd)

    @property
    def n_parameters(self) -> int:
        return int(self.problem.params.n_free)

    @cached_property
    def bank(self) -> MultidimBank:
        """The items as a :class:`~adaptive.bank.multidim.MultidimBank` (scoring, CAT, CSV in mirt's columns)."""
        return MultidimBank(item_ids=self.item_ids, models=self.models, phi=self.phi, n_cat=self.n_cat,
                            factor_names=self.factor_names, latent_cov=self.latent_cov, latent_mean=self.latent_mean)

    def nominal_parameters(self) -> dict:
        """mirt's nominal parameterization of the nominal items: ``{"a1", "ak" (I, C), "d" (I, C)}``."""
        return self.bank.nominal_parameters()

    def loadings(self) -> np.ndarray:
        """Standardized factor loadings ``(I, K)`` of the fitted (unrotated) solution."""
        return standardized_loadings(self.slopes, self.latent_cov)

    def rotate(self, method: str = "oblimin") -> Rotation:
        """Rotate the loadings of an exploratory solution (``varimax``, ``oblimin``, ``geomin``): a
        :class:`~adaptive.calibration.rotation.Rotation` with ``loadings`` and ``factor_correlations``."""
        if not self.exploratory:
            raise CalibrationError("rotate() applies to an exploratory fit (factors=K); a confirmatory model's "
                                   "factors are fixed by its pattern")
        return rotate_loadings(self.loadings(), method)

    def standard_errors(self) -> MultidimStandardErrors:
        """Standard errors from the observed information (Oakes' identity, by differences of the marginal score:
        one E-step per free parameter, plus one; on a quasi-Monte Carlo fit, of the QMC log-likelihood's score)."""
        info = self.problem.observed_information(self.x)
        try:
            cov = np.linalg.inv(info)
        except np.linalg.LinAlgError:
            raise CalibrationError("the observed information is singular: some parameter is not identified "
                                   "(an item that loads on no factor, or an exploratory fit)") from None
        se = np.sqrt(np.clip(np.diag(cov), 0, None))
        params = self.problem.params
        flat = np.full(params.phi0.size, np.nan)
        flat[params.free_idx] = se[:params.n_item_free]
        phi_se = flat.reshape(params.phi0.shape)
        if hasattr(self.problem, "full_phi"):  # bifactor: from the 2-dimensional layout to all factors
            phi_se = self.problem.full_phi(phi_se, fill=np.nan)
        k = self.n_dims
        corr: np.ndarray = np.full((k, k), np.nan)
        if params.n_groups == 1:
            cov_se = se[params.n_item_free:params.n_item_free + params.n_cov_free]
            corr[params.corr_pairs] = cov_se
            corr[params.corr_pairs[::-1]] = cov_se
        means: np.ndarray = np.full(k, np.nan)
        group_se: dict = {}
        if params.mean_free.size == k:
            at_cov, at_mean = params.n_item_free, params.n_item_free + params.n_cov_free
            for q, label in enumerate(self.groups or {"all": None}):
                pairs, mfree = params.group_pairs[q], params.means_free[q]
                c_se, m_se = np.full((k, k), np.nan), np.full(k, np.nan)
                c_se[pairs] = c_se[pairs[::-1]] = se[at_cov:at_cov + pairs[0].size]
                m_se[mfree] = se[at_mean:at_mean + int(mfree.sum())]
                at_cov += pairs[0].size
                at_mean += int(mfree.sum())
                group_se[label] = {"cov": c_se, "mean": m_se}
            corr, means = group_se[next(iter(group_se))]["cov"], group_se[next(iter(group_se))]["mean"]
        k_max = int(self.n_cat.max())
        ints = phi_se[:, k:k + k_max - 1].copy()
        ints[np.arange(k_max - 1)[None, :] >= (self.n_cat - 1)[:, None]] = np.nan
        names = tuple(f"{i} a{d + 1}" for i in self.item_ids for d in range(k))
        return MultidimStandardErrors(item_id=self.item_ids, slopes=phi_se[:, :k], intercepts=ints,
                                      correlations=corr, names=names, covariance=cov, means=means,
                                      groups=group_se if self.groups else None)

    def m2(self):
        """Maydeu-Olivares & Joe's M2 (M2PL items) or M2* (graded, GPCM) with RMSEA, SRMSR, CFI and TLI on
        complete data (:func:`adaptive.calibration.m2.m2_multidim`)."""
        from .m2 import m2_multidim

        return m2_multidim(self)

    def scores(self, method: str = "eap", points: int | None = None):
        """Ability estimates of the calibration sample (:func:`adaptive.scoring.multidim.estimate_vector`)."""
        from ..scoring.multidim import estimate_vector

        if not self.groups or self.person_groups is None:
            return estimate_vector(self.bank, self.problem.values, method=method, points=points,
                                   person_ids=self.person_ids)
        # each group's persons under their group's N(μ, Σ)
        n, k = self.problem.values.shape[0], self.n_dims
        theta, se, cov = np.empty((n, k)), np.empty((n, k)), np.empty((n, k, k))
        for label, lat in self.groups.items():
            rows = np.flatnonzero(self.person_groups == label)
            est = estimate_vector(self.bank, self.problem.values[rows], method=method, points=points,
                                  prior_mean=lat["mean"], prior_cov=lat["cov"])
            theta[rows], se[rows], cov[rows] = est.theta, est.se, est.cov
        return type(est)(person=tuple(str(p) for p in self.person_ids), theta=theta, se=se, cov=cov,
                         factor_names=self.factor_names, method=method)

    def summary(self) -> str:
        lines = [f"{self.n_dims}-dimensional {', '.join(sorted(set(self.models)))} calibration of "
                 f"{len(self.item_ids)} items on {self.n_persons} persons ({self.integration})",
                 f"log-likelihood {self.loglik:.3f}, AIC {self.aic:.3f}, BIC {self.bic:.3f}, "
                 f"{self.n_parameters} free parameters; EM {'converged' if self.converged else 'did NOT converge'}"
                 f" in {self.n_iter} cycles ({self.elapsed:.2f} s)"]
        if self.n_dims > 1:
            lines.append("latent correlations:")
            for i, name in enumerate(self.factor_names):
                lines.append(f"  {name:>8} " + " ".join(f"{v:7.3f}" for v in self.latent_correlations[i]))
        if self.groups:
            for label, lat in self.groups.items():
                sd = np.sqrt(np.diag(lat["cov"]))
                lines.append(f"group {label!r} (n = {lat['n']}): means " + ", ".join(
                    f"{name} {m:.3f}" for name, m in zip(self.factor_names, lat["mean"], strict=True)) + "; SDs " +
                    ", ".join(f"{v:.3f}" for v in sd))
        elif self.latent_mean is not None and np.any(self.latent_mean != 0):
            sd = np.sqrt(np.diag(self.latent_cov))
            lines.append("latent means and SDs (the scale of the fixed items): " + ", ".join(
                f"{name} {m:.3f} ({v:.3f})" for name, m, v in zip(self.factor_names, self.latent_mean, sd,
                                                                  strict=True)))
        return "\n".join(lines)
