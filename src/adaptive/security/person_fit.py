"""Person fit for adaptive and fixed-form data: lz and Snijders' lz*.

For person ``j`` with answers ``x_i`` to items ``i`` (category indicators ``x_ik``), at ability θ:

* ``l_0 = Σ_i log P_{i,x_i}(θ)``; ``W = l_0 - E l_0 = Σ_i Σ_k (x_ik - P_ik) w_ik`` with ``w_ik = log P_ik``.
* **lz** (Drasgow, Levine & Williams 1985): ``W / sqrt(Σ_i Var_i)`` with
  ``Var_i = Σ_k P_ik w_ik² - (Σ_k P_ik w_ik)²``; standard normal only when θ is the true ability.
* **lz*** (Snijders 2001; Magis, Raîche & Béland 2012 for the dichotomous models; Sinharay 2016 for
  polytomous items): θ̂ solves ``Σ_i Σ_k (x_ik - P_ik) r_ik + r_0(θ) = 0`` with ``r_ik = ∂θ log P_ik``
  and ``r_0`` set by the estimator (ML 0, WLE ``J/(2I)``, MAP ``-(θ-μ)/σ²``). With
  ``c = Σ P'_ik w_ik / Σ P'_ik r_ik`` and ``w̃_ik = w_ik - c r_ik``,
  ``lz* = (W(θ̂) + c r_0(θ̂)) / sqrt(Σ_i [Σ_k P_ik w̃_ik² - (Σ_k P_ik w̃_ik)²])``, asymptotically N(0, 1)
  with θ̂ estimated. For dichotomous items this is Snijders' formula with ``w_i = logit P_i`` and
  ``r_i = P_i'/(P_i(1-P_i))``.

Small values flag misfit (lower-tail p-values). Pass ``theta`` to use abilities you already have (say the
exam's own estimates) and say which estimator produced them; EAP estimates are treated as MAP with the
same prior (an approximation: EAP solves no likelihood equation).

Examples
--------
>>> import numpy as np
>>> from adaptive.synthetic import synthetic_bank, simulate_responses
>>> bank = synthetic_bank(40, model="2pl", rng=3)
>>> x = simulate_responses(bank.compile(), np.zeros(200), rng=4)
>>> fit = person_fit(bank, x, statistic="lz_star")
>>> round(float(np.mean(fit.values)), 1), fit.values.shape
(0.0, (200,))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from ..answers import Records
from ..exceptions import ScoringError
from ..scoring.long_format import estimate_theta, estimating_term, loglik_moments
from ..tables import Table
from ._stats import below

__all__ = ["PersonFitResult", "person_fit", "as_records", "AdaptiveNull", "adaptive_null"]

STATISTICS = ("lz", "lz_star")
ESTIMATORS = ("ml", "wle", "map", "eap")


@dataclass(frozen=True)
class PersonFitResult(Table):
    """Person-fit statistics, one entry per person.

    Attributes
    ----------
    person_id : person ids
    values : the statistic (NaN for a person with fewer than 2 answers or no information)
    p_values : lower-tail normal p-values (small: aberrant)
    theta : the ability the statistic was computed at
    n : answers per person
    statistic : "lz" or "lz_star"; estimator : the estimator of ``theta``
    reference : "N(0, 1)" or "adaptive simulation" -- where the p-values come from
    """

    key = "person_id"
    column_names = ("person_id", "values", "p_values", "theta", "n")
    person_id: tuple
    values: np.ndarray
    p_values: np.ndarray
    theta: np.ndarray
    n: np.ndarray
    statistic: str = "lz_star"
    estimator: str = "wle"
    reference: str = "N(0, 1)"

    def flagged(self, alpha: float = 0.01) -> np.ndarray:
        """``(N,)`` bool: p-value below ``alpha``."""
        return below(self.p_values, alpha)


def as_records(bank, responses) -> Records:
    """``responses``: :class:`Records`, or an ``(N, I)`` matrix with NaN for not administered."""
    if isinstance(responses, Records):
        return responses
    return Records.from_matrix(bank, responses)


def _arrays(bank):
    return bank.compile() if hasattr(bank, "compile") else bank


def person_fit(bank, responses, theta=None, statistic: str = "lz_star", *, estimator: str = "wle",
               prior_mean: float = 0.0, prior_sd: float = 1.0, null: AdaptiveNull | None = None) -> PersonFitResult:
    """lz or lz* of every person; see the module docstring.

    Parameters
    ----------
    bank : ItemBank (or compiled ItemArrays)
    responses : :class:`Records`, or an ``(N, I)`` matrix of categories with NaN = not administered
    theta : ``(N,)`` abilities to use; default: estimated here with ``estimator``
    statistic : "lz" or "lz_star"
    estimator : "wle" (default; finite for every pattern), "ml", "map" or "eap" (treated as "map")
    null : an :class:`AdaptiveNull` of the same statistic for adaptive data (p-values from it instead of N(0, 1))
    """
    if statistic not in STATISTICS:
        raise ScoringError(f"statistic {statistic!r} is not known; use one of {', '.join(STATISTICS)}")
    if estimator not in ESTIMATORS:
        raise ScoringError(f"estimator {estimator!r} is not known; use one of {', '.join(ESTIMATORS)}")
    arrays = _arrays(bank)
    rec = as_records(bank, responses)
    method = "map" if estimator == "eap" else estimator
    if theta is None:
        theta = estimate_theta(arrays, rec, method, prior_mean=prior_mean, prior_sd=prior_sd).theta
    theta = np.asarray(theta, dtype=float).reshape(-1)
    if theta.size != rec.n_persons:
        raise ScoringError(f"theta has {theta.size} values for {rec.n_persons} persons; give one per person")
    values = _statistic(arrays, rec, theta, statistic, method, prior_mean, prior_sd)
    if null is not None and (null.statistic != statistic or null.estimator != estimator):
        raise ScoringError(f"the null distribution is of {null.statistic} with {null.estimator}; compute it for "
                           f"{statistic} with {estimator}")
    p_values = norm.cdf(values) if null is None else null.p_values(values)
    return PersonFitResult(person_id=rec.person_ids, values=values, p_values=p_values, theta=theta,
                           n=rec.answered(), statistic=statistic, estimator=estimator,
                           reference="N(0, 1)" if null is None else f"adaptive simulation ({null.values.size} "
                                                                    "simulees)")


def _statistic(arrays, rec: Records, theta, statistic, method, prior_mean, prior_sd) -> np.ndarray:
    n = rec.n_persons
    tm = arrays.terms_at(np.nan_to_num(theta[rec.person]), rec.item)
    w = tm.log_prob
    if statistic == "lz":
        num, var = loglik_moments(w, rec.category, rec.person, n)
    else:
        r = tm.dlog_prob
        pr = np.exp(w) * r  # P'_ik
        info = rec.per_person((pr * r).sum(axis=1))
        jay = rec.per_person((pr * (tm.d2log_prob + r ** 2)).sum(axis=1))
        with np.errstate(invalid="ignore", divide="ignore"):
            c = np.where(info > 0, rec.per_person((pr * w).sum(axis=1)) / info, 0.0)
        big_w, var = loglik_moments(w, rec.category, rec.person, n, weights=w - c[rec.person][:, None] * r)
        num = big_w + c * estimating_term(method, theta, info, jay, prior_mean, prior_sd)
    ok = (rec.answered() >= 2) & (var > 1e-12) & np.isfinite(theta)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, num / np.sqrt(np.where(ok, var, 1.0)), np.nan)[:n]


@dataclass(frozen=True)
class AdaptiveNull:
    """The distribution of a person-fit statistic for honest candidates of an adaptive design, by simulation.

    Snijders' N(0, 1) assumes a fixed set of items; in an adaptive test the items depend on the answers, and
    lz* of honest candidates is then shifted up and narrower (for the CMCS design about mean +0.4, SD 0.9), so
    normal p-values are conservative. Simulated honest candidates taken through the same engine give the
    reference distribution; :meth:`p_values` are its lower-tail ranks, ``(1 + #{null <= v}) / (n + 1)``.

    Attributes
    ----------
    values : sorted statistic values of the simulated candidates
    statistic, estimator : as in :func:`person_fit`
    """

    values: np.ndarray
    statistic: str
    estimator: str

    def p_values(self, v) -> np.ndarray:
        v = np.asarray(v, dtype=float)
        rank = np.searchsorted(self.values, v, side="right")
        return np.where(np.isfinite(v), (1.0 + rank) / (self.values.size + 1.0), np.nan)


def adaptive_null(design, bank, n: int = 5000, *, theta=None, rng=0, statistic: str = "lz_star",
                  estimator: str = "wle") -> AdaptiveNull:
    """Simulate ``n`` honest candidates through the engine with ``design`` and compute their statistic.

    ``theta``: abilities to draw the simulees from (e.g. the window's own estimates; default N(0, 1)).
    """
    from .._random import as_generator
    from ..cat.posthoc import simulate_cat

    gen = as_generator(rng)
    th = gen.normal(size=n) if theta is None else gen.choice(np.asarray(theta, dtype=float)[np.isfinite(theta)], n)
    res = simulate_cat(design, bank, thetas=th, seed=int(gen.integers(0, 2**31)))
    rec = Records.from_cat(res)
    fit = person_fit(bank, rec, statistic=statistic, estimator=estimator)
    vals = np.sort(fit.values[np.isfinite(fit.values)])
    return AdaptiveNull(values=vals, statistic=statistic, estimator=estimator)
