"""Domain subscores: what a multidimensional design adds over the total score, and what it costs in length.

Each content domain of a bank's blueprint becomes a factor: item j loads on its domain's factor with its slope,
``d_j = -a_j b_j`` (the M2PL version of the bank; a 3PL item's lower asymptote is set aside), the domains
correlate ``correlation``. Simulees ``θ ~ N(0, R)`` answer every item from that model once (a full answer
matrix), and two designs score the same simulees on the same answers:

* **unidimensional**: a CAT on the one-factor version of the bank (the same slopes on one θ), with the blueprint's
  domain counts; the total score is its θ̂, and each domain's *observed subscore* is the MAP of that domain's
  answered items alone (one-dimensional, N(0, 1) prior);
* **multidimensional**: an MCAT on the K-factor bank (D-rule with the prior's information, MAP with the prior
  N(0, R)), the same length and domain counts; each domain's subscore is its component of θ̂, which borrows
  strength from the other domains through R.

Per domain: bias, RMSE, marginal reliability (``1 - mean SE²``, the latent variances being 1) and mean SE of the
multidimensional subscores, and Haberman's (2008) proportional reduction in mean squared error, estimated by the squared
correlation with the true domain ability, of the observed subscore (PRMSE_s), of the total score (PRMSE_x) and of
the multidimensional subscore: a subscore has added value when PRMSE_s > PRMSE_x (Haberman's criterion; Sinharay
2010 finds it rarely met with fewer than about 20 items a domain). The length cost is the mean number of items the
MCAT needs until every domain's SE is at most ``se_target``, next to the unidimensional CAT's length to the same SE
on the total score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..bank.multidim import MultidimBank
from ..cat.multidim import MultidimDesign, run_mcat
from ..exceptions import DesignError
from ..irt.linear import n_internal
from ..scoring.multidim import map_vector
from ..tables import Table

__all__ = ["SubscoreStudy", "subscore_study", "domain_bank", "prmse"]


def prmse(estimate, truth) -> float:
    """Haberman's PRMSE of a score for a true ability, from simulated data: the squared correlation
    ``corr(θ̂, θ)²`` (the proportion of the true score's variance the best linear predictor from θ̂ explains)."""
    r = np.corrcoef(np.asarray(estimate, dtype=float), np.asarray(truth, dtype=float))[0, 1]
    return float(r * r)


@dataclass(frozen=True)
class SubscoreStudy(Table):
    """One row per domain; ``length_*`` are test lengths (see the module docstring)."""

    key = "domain"
    domain: tuple
    pool_items: np.ndarray
    mean_items: np.ndarray
    bias: np.ndarray
    rmse: np.ndarray
    reliability: np.ndarray
    mean_se: np.ndarray
    prmse_subscore: np.ndarray
    prmse_total: np.ndarray
    prmse_multidim: np.ndarray
    added_value: np.ndarray
    length: int = 0
    correlation: float = 0.0
    n_simulees: int = 0
    se_target: float = 0.0
    length_unidim_to_target: float = 0.0
    length_multidim_to_target: float = 0.0

    def columns(self) -> dict:
        return {k: getattr(self, k) for k in ("domain", "pool_items", "mean_items", "bias", "rmse", "reliability",
                                              "mean_se", "prmse_subscore", "prmse_total", "prmse_multidim",
                                              "added_value")}


def domain_bank(bank, correlation: float, one_factor: bool = False) -> MultidimBank:
    """The M2PL version of a (unidimensional, dichotomous) ``ItemBank`` with one factor per blueprint domain
    (or one factor for all, ``one_factor``)."""
    arr = bank.compile()
    if np.any(arr.n_cat != 2):
        raise DesignError("the subscore study needs dichotomous items")
    names = list(arr.domains)
    if not names or np.any(arr.domain < 0):
        raise DesignError("every item needs a content domain (the bank's blueprint domains become the factors)")
    k = 1 if one_factor else len(names)
    phi = np.zeros((arr.n_items, n_internal(k, 2)))
    phi[np.arange(arr.n_items), 0 if one_factor else arr.domain] = arr.a
    phi[:, k] = -arr.a * arr.thresholds[:, 0]
    cov = np.eye(k) if one_factor else np.full((k, k), correlation) + (1 - correlation) * np.eye(k)
    return MultidimBank(bank.ids, ["2pl"] * arr.n_items, phi, np.full(arr.n_items, 2),
                        factor_names=("total",) if one_factor else tuple(names), latent_cov=cov)


def subscore_study(bank, n: int = 2000, correlation: float = 0.8, length: int = 40, se_target: float = 0.5,
                   rng=None) -> SubscoreStudy:
    """Run the study (see the module docstring) on ``bank``'s items and blueprint."""
    if not 0 <= correlation < 1:
        raise DesignError(f"correlation {correlation}: give a domain correlation in [0, 1)")
    rng = np.random.default_rng(rng)
    multi = domain_bank(bank, correlation)
    single = domain_bank(bank, correlation, one_factor=True)
    arr = bank.compile()
    k = multi.n_dims
    if length > len(multi):
        raise DesignError(f"length {length} exceeds the bank's {len(multi)} items")
    theta = rng.multivariate_normal(np.zeros(k), multi.latent_cov, size=n)
    a, d = multi.phi[:, :k], multi.phi[:, k]
    answers = (rng.random((n, len(multi))) < 1 / (1 + np.exp(-(theta @ a.T + d)))).astype(float)
    # blueprint counts at this length (largest remainders), the same for both designs
    share = {dom.name: dom.proportion or 0.0 for dom in bank.blueprint.domains} if bank.blueprint else {}
    props = np.array([share.get(name, 1.0 / k) for name in multi.factor_names])
    raw = props / props.sum() * length
    counts = np.floor(raw).astype(int)
    counts[np.argsort(-(raw - counts))[:length - counts.sum()]] += 1
    counts = np.minimum(counts, np.bincount(arr.domain, minlength=k))
    domains = {iid: multi.factor_names[arr.domain[j]] for j, iid in enumerate(bank.ids)}
    caps = {multi.factor_names[q]: int(counts[q]) for q in range(k)}
    fixed = min(length, int(counts.sum()))
    uni = run_mcat(single, MultidimDesign(rule="d_rule", include_prior=True, min_items=fixed, max_items=fixed,
                                          domains=domains, domain_max=caps), answers, rng=rng)
    mul = run_mcat(multi, MultidimDesign(rule="d_rule", include_prior=True, min_items=fixed, max_items=fixed,
                                         domains=domains, domain_max=caps), answers, rng=rng)
    # observed subscores: each domain's answered items of the unidimensional test, scored on their own
    given = ~np.isnan(uni.answers)
    sub = np.empty((n, k))
    for q in range(k):
        cols = np.flatnonzero(arr.domain == q)
        one = MultidimBank([bank.ids[j] for j in cols], ["2pl"] * cols.size,
                           np.column_stack([arr.a[cols], -arr.a[cols] * arr.thresholds[cols, 0],
                                            np.zeros(cols.size)]), np.full(cols.size, 2))
        vals = np.where(given[:, cols], answers[:, cols], np.nan)
        sub[:, q] = map_vector(one, vals)[0][:, 0]
    total = uni.theta[:, 0]
    err = mul.theta - theta
    used = np.stack([(np.isin(mul.given, np.flatnonzero(arr.domain == q))).sum(axis=1) for q in range(k)], axis=1)
    # the length cost: each design run to its SE target (all domains for the MCAT)
    to_uni = run_mcat(single, MultidimDesign(rule="d_rule", include_prior=True, min_items=1, max_items=len(multi),
                                             se_target=se_target),
                      answers, rng=rng)
    to_mul = run_mcat(multi, MultidimDesign(rule="d_rule", include_prior=True, min_items=1, max_items=len(multi),
                                            se_target=se_target), answers, rng=rng)
    return SubscoreStudy(
        domain=multi.factor_names, pool_items=np.bincount(arr.domain, minlength=k), mean_items=used.mean(axis=0),
        bias=err.mean(axis=0), rmse=np.sqrt((err ** 2).mean(axis=0)),
        reliability=1.0 - (mul.se ** 2).mean(axis=0),
        mean_se=mul.se.mean(axis=0),
        prmse_subscore=np.array([prmse(sub[:, q], theta[:, q]) for q in range(k)]),
        prmse_total=np.array([prmse(total, theta[:, q]) for q in range(k)]),
        prmse_multidim=np.array([prmse(mul.theta[:, q], theta[:, q]) for q in range(k)]),
        added_value=np.array([prmse(sub[:, q], theta[:, q]) > prmse(total, theta[:, q]) for q in range(k)]),
        length=fixed, correlation=float(correlation), n_simulees=n, se_target=float(se_target),
        length_unidim_to_target=float(to_uni.n_given.mean()), length_multidim_to_target=float(to_mul.n_given.mean()))
