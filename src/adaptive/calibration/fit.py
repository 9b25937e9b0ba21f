"""Item and person fit of a calibrated model: S-X2, infit/outfit, lz.

* **S-X2** (Orlando & Thissen 2000; Kang & Chen 2008 for polytomous items):
  persons are grouped by their summed score; the observed proportion in each
  category of item *i* within a score group is compared with the model's
  expectation ``Σ_q P_ik(θ_q) f_{-i}(s - k | θ_q) w_q / Σ_q f(s | θ_q) w_q``,
  where ``f`` is the Lord-Wingersky summed-score distribution (``f_{-i}``
  without item *i*) and ``w`` the fitted latent distribution on the
  quadrature grid. The extreme scores (0 and the maximum) carry no
  information and are left out; adjacent score groups are pooled until every
  expected cell count is at least ``min_expected`` (default 1, as mirt).
  ``df = groups × (K_i - 1) - free parameters of the item``.

  **Missing data.** Summed scores need every item. With missing responses
  the statistic is computed on ``imputations`` completed data sets (default
  5, seeded): each missing response is drawn from the fitted model at a
  plausible value of the person's θ (a draw from the posterior on the grid);
  the reported S-X2 is the mean over the imputations and the p-value is taken
  at that mean (the approach of mirt's ``itemfit(impute=)``).
* **Infit / outfit** mean squares: ``outfit = mean z²``, ``infit = Σ (x - E)² / Σ Var`` over the persons who
  answered the item, at each person's EAP θ; expected value 1.
* **lz** (Drasgow, Levine & Williams 1985): the standardized log-likelihood of a person's responses at their
  EAP θ; large negative values flag aberrant patterns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2

from .._random import as_generator
from ..irt.mixed import internal_log_prob
from ..scoring.long_format import loglik_moments
from ..tables import Table

__all__ = ["ItemFit", "PersonFit", "item_fit", "person_fit", "summed_score_distribution", "sx2"]


@dataclass(frozen=True)
class ItemFit(Table):
    """Item fit of a calibration, one entry per item.

    Attributes
    ----------
    item_id : item ids
    sx2, df, p_sx2 : Orlando & Thissen's S-X2, its degrees of freedom and p-value (NaN where df = 0)
    infit, outfit : information-weighted and unweighted mean-square residuals at the EAP θ
    n : responses to the item
    """

    key = "item_id"
    item_id: tuple
    sx2: np.ndarray
    df: np.ndarray
    p_sx2: np.ndarray
    infit: np.ndarray
    outfit: np.ndarray
    n: np.ndarray

    def flagged(self, alpha: float = 0.01, low: float = 0.7, high: float = 1.3) -> np.ndarray:
        """``(I,)`` bool: S-X2 p below ``alpha``, or infit/outfit outside ``[low, high]``."""
        with np.errstate(invalid="ignore"):
            bad_p = np.nan_to_num(self.p_sx2, nan=1.0) < alpha
        return bad_p | ~((self.infit >= low) & (self.infit <= high)) | ~((self.outfit >= low) & (self.outfit <= high))


@dataclass(frozen=True)
class PersonFit(Table):
    """Person fit of a calibration's response rows at their EAP θ.

    Attributes
    ----------
    person_id, theta : row ids and EAP θ
    lz : Drasgow, Levine & Williams' standardized log-likelihood (NaN with no information)
    infit, outfit : mean-square residuals; n : answered items
    """

    key = "person_id"
    person_id: tuple
    theta: np.ndarray
    lz: np.ndarray
    infit: np.ndarray
    outfit: np.ndarray
    n: np.ndarray


def summed_score_distribution(prob):
    """Lord-Wingersky: ``prob (I, Q, K)`` category probabilities -> ``(Q, S + 1)`` summed-score distribution."""
    n_i, n_q, k = prob.shape
    f = np.zeros((n_q, 1 + n_i * (k - 1)))
    f[:, 0] = 1.0
    top = 0
    for i in range(n_i):
        kk = int(np.max(np.nonzero(prob[i].max(axis=0) > 0)[0])) + 1 if prob[i].any() else 1
        new = np.zeros_like(f)
        for c in range(kk):
            new[:, c:top + c + 1] += f[:, : top + 1] * prob[i, :, c, None]
        f = new
        top += kk - 1
    return f[:, : top + 1]


def _leave_one_out(prob, n_cat):
    """``f_{-i}`` for every item: ``(I, Q, S + 1)`` (S = total maximum score), by one batched recursion."""
    n_i, n_q, k = prob.shape
    s_max = int((n_cat - 1).sum())
    f = np.zeros((n_i, n_q, s_max + 1))
    f[:, :, 0] = 1.0
    top = 0
    rows = np.arange(n_i)
    for j in range(n_i):
        kj = int(n_cat[j])
        new = np.zeros((n_i, n_q, s_max + 1))
        for c in range(kj):
            new[:, :, c:top + c + 1] += f[:, :, : top + 1] * prob[j, None, :, c, None]
        keep = rows == j
        new[keep] = f[keep]  # item j is left out of its own distribution
        f = new
        top += kj - 1
    return f


def sx2(values, prob, n_cat, weights, n_free, min_expected=1.0):
    """S-X2 for complete data: ``values (N, I)`` categories, ``prob (I, Q, K)`` on the grid, ``weights (Q,)``.

    Returns arrays ``(stat, df, p)`` per item.
    """
    values = np.asarray(values, dtype=int)
    n_i = values.shape[1]
    total = values.sum(axis=1)
    s_max = int((n_cat - 1).sum())
    f_all = summed_score_distribution(prob)  # (Q, S+1)
    marg = weights @ f_all  # P(S = s)
    f_loo = _leave_one_out(prob, n_cat)
    n_s = np.bincount(total, minlength=s_max + 1).astype(float)
    stat = np.full(n_i, np.nan)
    df = np.zeros(n_i, dtype=int)
    for i in range(n_i):  # per item: a few vector operations over score groups
        k = int(n_cat[i])
        exp = np.zeros((s_max + 1, k))
        for c in range(k):
            shifted = np.zeros_like(f_loo[i])
            shifted[:, c:] = f_loo[i][:, : s_max + 1 - c]
            exp[:, c] = (weights * prob[i, :, c]) @ shifted
        with np.errstate(invalid="ignore", divide="ignore"):
            exp = exp / marg[:, None]
        obs = np.zeros((s_max + 1, k))
        np.add.at(obs, (total, values[:, i]), 1.0)
        scores = np.arange(1, s_max)  # extreme scores carry no information
        e_cnt = n_s[scores, None] * np.nan_to_num(exp[scores])
        o_cnt = obs[scores]
        groups_e, groups_o = [], []
        acc_e, acc_o = np.zeros(k), np.zeros(k)
        for s in range(scores.size):
            acc_e += e_cnt[s]
            acc_o += o_cnt[s]
            if acc_e.min() >= min_expected:
                groups_e.append(acc_e)
                groups_o.append(acc_o)
                acc_e, acc_o = np.zeros(k), np.zeros(k)
        if acc_e.sum() > 0:
            if groups_e:
                groups_e[-1] = groups_e[-1] + acc_e
                groups_o[-1] = groups_o[-1] + acc_o
            else:
                groups_e.append(acc_e)
                groups_o.append(acc_o)
        ge, go = np.array(groups_e), np.array(groups_o)
        with np.errstate(invalid="ignore", divide="ignore"):
            cells = np.where(ge > 0, (go - ge) ** 2 / ge, 0.0)
        stat[i] = cells.sum()
        df[i] = len(groups_e) * (k - 1) - int(n_free[i])
    p = np.where(df > 0, chi2.sf(stat, np.maximum(df, 1)), np.nan)
    return stat, df, p


def _fitted(result):
    fitted = result.fitted
    problem, phi, latent = fitted.problem, fitted.phi, fitted.latent
    return problem, phi, latent


def _at_theta(problem, phi, theta):
    """Category probabilities of every item at per-person θ: ``(N, I, K)``."""
    lp = internal_log_prob(problem.family, problem.n_cat, phi, np.asarray(theta, dtype=float))  # (I, N, K)
    return np.exp(lp).transpose(1, 0, 2) * (lp > -999.0).transpose(1, 0, 2)


def _mean_squares(problem, pr, axis):
    """Infit and outfit mean squares summed over persons (``axis=0``, per item) or items (``axis=1``)."""
    kk = np.arange(pr.shape[2])
    e = pr @ kk
    m = problem.layout.mask
    resid2 = np.where(m, (problem.layout.category - e) ** 2, 0.0)
    var = np.where(m, pr @ kk ** 2 - e ** 2, 0.0)
    n = m.sum(axis=axis)
    outfit = np.where(m, resid2 / np.maximum(var, 1e-12), 0.0).sum(axis=axis) / np.maximum(n, 1)
    infit = resid2.sum(axis=axis) / np.maximum(var.sum(axis=axis), 1e-12)
    return infit, outfit, n


def _mixture_weights(problem, latent):
    lw = problem.log_weights(latent)
    share = problem.layout.group_sizes / problem.layout.group_sizes.sum()
    return share @ np.exp(lw)


def item_fit(result, *, min_expected=1.0, imputations=5, seed=0) -> ItemFit:
    """S-X2 (with multiple imputation of missing responses), infit and outfit of every item; see :class:`ItemFit`."""
    problem, phi, latent = _fitted(result)
    lp = internal_log_prob(problem.family, problem.n_cat, phi, problem.theta)
    prob = np.exp(lp) * (lp > -999.0)
    weights = _mixture_weights(problem, latent)
    n_free = problem.params.free.sum(axis=1) + problem.params.tied
    cat = problem.layout.category
    if problem.layout.complete:
        stat, df, p = sx2(cat, prob, problem.n_cat, weights, n_free, min_expected)
    else:
        rng = as_generator(seed)
        post, _ = problem.posterior(np.log(np.maximum(prob, 1e-300)), latent)
        stats = []
        for _ in range(imputations):
            cdf = np.cumsum(post, axis=1)
            u = rng.random((cdf.shape[0], 1))
            node = np.minimum((cdf < u * cdf[:, -1:]).sum(axis=1), problem.theta.size - 1)
            pr = prob.transpose(1, 0, 2)[node]  # (N, I, K) at each person's drawn node
            cum = np.cumsum(pr, axis=2)
            draw = (rng.random(cat.shape)[:, :, None] > cum).sum(axis=2)
            draw = np.minimum(draw, problem.n_cat[None, :] - 1)
            completed = np.where(problem.layout.mask, cat, draw)
            stats.append(sx2(completed, prob, problem.n_cat, weights, n_free, min_expected))
        stat = np.mean([s[0] for s in stats], axis=0)
        df = np.round(np.mean([s[1] for s in stats], axis=0)).astype(int)
        p = np.where(df > 0, chi2.sf(stat, np.maximum(df, 1)), np.nan)
    theta_hat, _ = result.theta()
    infit, outfit, n = _mean_squares(problem, _at_theta(problem, phi, theta_hat), axis=0)
    return ItemFit(item_id=tuple(result.item_ids), sx2=np.asarray(stat, dtype=float), df=np.asarray(df, dtype=int),
                   p_sx2=np.where(np.isfinite(p), p, np.nan), infit=np.asarray(infit, dtype=float),
                   outfit=np.asarray(outfit, dtype=float), n=np.asarray(n, dtype=int))


def person_fit(result) -> PersonFit:
    """lz, infit and outfit of every response row at its EAP θ; see :class:`PersonFit`."""
    problem, phi, _ = _fitted(result)
    theta_hat, _ = result.theta()
    pr = _at_theta(problem, phi, theta_hat)
    person, item = np.nonzero(problem.layout.mask)  # the answers, one row each
    logp = np.log(np.maximum(pr[person, item], 1e-300))
    w, vl = loglik_moments(logp, problem.layout.category[person, item], person, pr.shape[0])
    infit, outfit, n = _mean_squares(problem, pr, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        lz = np.where(vl > 0, w / np.sqrt(np.where(vl > 0, vl, 1.0)), np.nan)
    return PersonFit(person_id=tuple(result.person_ids), theta=np.asarray(theta_hat, dtype=float), lz=lz,
                     infit=np.asarray(infit, dtype=float), outfit=np.asarray(outfit, dtype=float),
                     n=np.asarray(n, dtype=int))
