"""Limited-information goodness of fit: Maydeu-Olivares & Joe's M2 for dichotomous unidimensional models.

With ``n`` items, the first- and second-order margins ``π₂ = (P(x_i = 1), P(x_i = x_j = 1), i < j)`` (``s = n +
n(n-1)/2`` of them) are compared with their sample proportions ``p₂`` (Maydeu-Olivares & Joe 2005, 2006):

``M2 = N (p₂ - π₂)ᵀ C₂ (p₂ - π₂)``, ``C₂ = Ξ₂⁻¹ - Ξ₂⁻¹ Δ₂ (Δ₂ᵀ Ξ₂⁻¹ Δ₂)⁻¹ Δ₂ᵀ Ξ₂⁻¹``

with ``Ξ₂`` the model covariance of the margins (moments up to order four, by quadrature) and ``Δ₂ = ∂π₂/∂γ``
(central differences in the free parameters; ``C₂`` projects out their span, so the parameterization does not
matter). ``df = s - q``. Also reported: RMSEA₂ ``sqrt(max(M2 - df, 0) / ((N - 1) df))`` with its 90% interval
``sqrt(λ / (N df))`` at the noncentralities λ where the noncentral χ² puts M2 at its 95th and 5th percentiles
(mirt's two conventions, kept so the numbers agree), SRMSR (the root mean squared residual correlation over
item pairs), and CFI and TLI against the independence model (intercepts only), all as mirt's ``M2()`` reports
them.

The margins and moments are integrals over N(0, 1) on the calibration's grid (61 points on [-6, 6] by default,
as mirt). Complete data only: with missing responses the sample margins of different pairs come from different
persons and the statistic's distribution changes; the function refuses them.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit
from scipy.stats import chi2, ncx2, norm

from ..exceptions import CalibrationError

__all__ = ["M2Result", "m2_statistic", "m2_multidim", "MAX_ITEMS"]

#: the most items M2 is computed for (60 items: 1,830 margins, about 4 s)
MAX_ITEMS = 60


@dataclass(frozen=True)
class M2Result:
    """M2 and the fit indices derived from it."""

    statistic: float
    df: int
    p_value: float
    rmsea: float
    rmsea_ci: tuple[float, float]
    srmsr: float
    cfi: float
    tli: float

    def __repr__(self) -> str:
        return (f"M2Result(M2 = {self.statistic:.4f}, df = {self.df}, p = {self.p_value:.4g}; RMSEA {self.rmsea:.4f} "
                f"[{self.rmsea_ci[0]:.4f}, {self.rmsea_ci[1]:.4f}], SRMSR {self.srmsr:.4f}, CFI {self.cfi:.4f}, "
                f"TLI {self.tli:.4f})")


def _moment_sets(n: int):
    sets = [(i,) for i in range(n)] + list(combinations(range(n), 2))
    ind = np.zeros((len(sets), n))
    for k, st in enumerate(sets):  # the s margins as item indicators
        ind[k, list(st)] = 1.0
    return sets, ind


def _model(prob_fn, params, weights):
    """``(P(x = 1) (n, Q), weights (Q,))``: ``prob_fn`` returns the probabilities, or both (weights that depend
    on the parameters, e.g. on latent correlations)."""
    out = prob_fn(params)
    return out if isinstance(out, tuple) else (out, weights)


def _pi2(prob_fn, params, weights, ind):
    """π₂ for item probabilities ``prob_fn(params) -> (n, Q)``: E[Π x] over each margin's items."""
    p, weights = _model(prob_fn, params, weights)
    return np.exp(ind @ np.log(np.clip(p, 1e-300, 1.0))) @ weights


def _margins(prob_fn, params, grid, weights, ind):
    """π₂ and Ξ₂ for item probabilities ``prob_fn(params) -> (n, Q)``."""
    p, weights = _model(prob_fn, params, weights)
    p = np.clip(p, 1e-300, 1.0)
    logp = np.log(p)  # (n, Q)
    pi2 = np.exp(ind @ logp) @ weights
    s = ind.shape[0]
    joint = np.empty((s, s))
    block = max(1, 2_000_000 // max(s * ind.shape[1], 1))  # rows per block: a few million cells at a time
    for start in range(0, s, block):  # the items of each product of two margins, block by block
        union = np.maximum(ind[start:start + block, None, :], ind[None, :, :])
        joint[start:start + block] = (np.exp(union.reshape(-1, ind.shape[1]) @ logp) @ weights).reshape(-1, s)
    return pi2, joint - np.outer(pi2, pi2)


def _m2_core(x, prob_fn, params, grid, weights):
    n_persons, n = x.shape
    sets, ind = _moment_sets(n)
    observed = np.array([np.mean(np.prod(x[:, list(st)], axis=1)) for st in sets])
    pi2, xi = _margins(prob_fn, params, grid, weights, ind)
    q = params.size
    delta = np.zeros((len(sets), q))
    h = 1e-5
    for j in range(q):  # central differences, one parameter at a time
        up, down = params.copy(), params.copy()
        up[j] += h
        down[j] -= h
        delta[:, j] = (_pi2(prob_fn, up, weights, ind) - _pi2(prob_fn, down, weights, ind)) / (2 * h)
    xi_inv = np.linalg.inv(xi)
    mid = np.linalg.inv(delta.T @ xi_inv @ delta)
    c2 = xi_inv - xi_inv @ delta @ mid @ delta.T @ xi_inv
    e = observed - pi2
    return float(n_persons * e @ c2 @ e), len(sets) - q, observed, pi2


def m2_statistic(bank, responses, *, grid=(-6.0, 6.0, 61)) -> M2Result:
    """M2 of ``bank``'s dichotomous items (1PL, 2PL or 3PL, the model's free parameters as estimated) on complete
    0/1 ``responses (N, n)`` in the bank's item order; see the module docstring."""
    from ..irt.arrays import theta_grid

    x = np.asarray(responses, dtype=float)
    arr = bank.compile()
    if x.ndim != 2 or x.shape[1] != arr.n_items:
        raise CalibrationError(f"responses have shape {x.shape}; give (N, {arr.n_items}) in the bank's item order")
    if not np.isfinite(x).all():
        raise CalibrationError("M2 needs complete data (every person answered every item); with missing responses "
                               "the margins of different pairs come from different persons")
    if not np.isin(x, (0.0, 1.0)).all() or np.any(arr.n_cat != 2):
        raise CalibrationError("M2 here is for dichotomous items with 0/1 responses")
    models = {it.model for it in bank.items}
    if not models <= {"rasch", "1pl", "2pl", "3pl"}:
        raise CalibrationError(f"M2 supports rasch, 1pl, 2pl and 3pl banks; this one has {sorted(models)}")
    n = arr.n_items
    if n < 3:
        raise CalibrationError("M2 needs at least 3 items (with 2 there are no degrees of freedom)")
    if n > MAX_ITEMS:
        raise CalibrationError(f"M2 on {n} items means {n + n * (n - 1) // 2} margins and a covariance matrix of "
                               f"their fourth-order moments; at most {MAX_ITEMS} items are done here. Compute it on "
                               "a section of the form (a subset of the columns and of the bank), or use S-X2")
    pts = theta_grid(grid)
    w = norm.pdf(pts)
    w /= w.sum()
    slope_common = models <= {"rasch", "1pl"}
    guess = "3pl" in models
    a, b, c = arr.a.copy(), arr.thresholds[:, 0].copy(), arr.c.copy()

    def unpack(v):
        if slope_common:
            return np.full(n, v[0]), v[1:1 + n], np.zeros(n)
        return v[:n], v[n:2 * n], (v[2 * n:3 * n] if guess else np.zeros(n))

    def prob(v):
        aa, bb, cc = unpack(v)
        return cc[:, None] + (1 - cc[:, None]) * expit(aa[:, None] * (pts[None, :] - bb[:, None]))

    params = (np.concatenate([[a[0]], b]) if slope_common else
              np.concatenate([a, b] + ([c] if guess else [])))
    return _m2_result(x, prob, params, pts, w)


def _m2_result(x, prob, params, pts, w) -> M2Result:
    """M2, its df and p-value, RMSEA with its interval, SRMSR, CFI and TLI for the model ``prob(params)``."""
    n = x.shape[1]
    stat, df, observed, pi2 = _m2_core(x, prob, params, pts, w)
    if df < 1:
        raise CalibrationError(f"the model has {params.size} parameters for {df + params.size} margins: no degrees "
                               "of freedom left for M2")
    # the independence model: each item its own proportion, no slope
    p_obs = x.mean(axis=0)
    null_stat, null_df, _, _ = _m2_core(x, lambda v: np.repeat(expit(v)[:, None], len(pts), axis=1),
                                        np.log(p_obs / (1 - p_obs)), pts, w)
    n_persons = x.shape[0]
    rmsea = float(np.sqrt(max(stat - df, 0.0) / ((n_persons - 1) * df)))
    ci = tuple(_rmsea_bound(stat, df, n_persons, q) for q in (0.95, 0.05))
    # residual correlations of each item pair
    pi1, pij = pi2[:n], pi2[n:]
    o1, oij = observed[:n], observed[n:]
    res = []
    for k, (i, j) in enumerate(combinations(range(n), 2)):
        r_obs = (oij[k] - o1[i] * o1[j]) / np.sqrt(o1[i] * (1 - o1[i]) * o1[j] * (1 - o1[j]))
        r_mod = (pij[k] - pi1[i] * pi1[j]) / np.sqrt(pi1[i] * (1 - pi1[i]) * pi1[j] * (1 - pi1[j]))
        res.append(r_obs - r_mod)
    srmsr = float(np.sqrt(np.mean(np.square(res))))
    d_null = max(null_stat - null_df, 0.0)
    cfi = float(1.0 - max(stat - df, 0.0) / max(d_null, stat - df, 1e-12))
    tli = float((null_stat / null_df - stat / df) / (null_stat / null_df - 1.0))
    return M2Result(statistic=stat, df=int(df), p_value=float(chi2.sf(stat, df)), rmsea=rmsea,
                    rmsea_ci=(float(ci[0]), float(ci[1])), srmsr=srmsr, cfi=cfi, tli=tli)


def _rmsea_bound(stat: float, df: int, n_persons: int, prob: float) -> float:
    """The RMSEA at the noncentrality where ``P(χ²_df(λ) <= M2) = prob`` (0 when even λ = 0 is beyond it)."""
    if chi2.cdf(stat, df) <= prob:
        return 0.0
    f = lambda lam: ncx2.cdf(stat, df, lam) - prob  # noqa: E731
    hi = max(stat, 1.0)
    while f(hi) > 0:
        hi *= 2.0
    lam = brentq(f, 0.0, hi, xtol=1e-10)
    return float(np.sqrt(lam / (n_persons * df)))


def m2_multidim(result) -> M2Result:
    """M2 of a multidimensional fit of dichotomous (M2PL) items (:class:`~adaptive.calibration.multidim_result.
    MultidimResult`, confirmatory or exploratory) on its complete data: margins integrated on the fit's product
    grid with the fitted N(0, Σ) weights; the free parameters (slopes, intercepts and the estimated correlations)
    are those of the fit, so Δ₂ has a column for each correlation too."""
    from .multidim import LinearProblem, log_mvn_weights

    problem = result.problem
    if not isinstance(problem, LinearProblem) or not np.all(result.n_cat == 2) or any(m != "2pl" for m in
                                                                                        result.models):
        raise CalibrationError("M2 here is for dichotomous (2pl) items fitted with factors=; this fit has "
                               f"{sorted(set(result.models))} items" + (" (bifactor)" if not isinstance(
                                   problem, LinearProblem) else ""))
    if getattr(problem, "integration", "grid") == "qmc":
        raise CalibrationError("M2 is computed on the fit's product grid; this fit used quasi-Monte Carlo EM (more "
                               "than 3 factors): refit with integration='grid' (up to 5 factors) for M2")
    x = problem.values
    if not np.isfinite(x).all():
        raise CalibrationError("M2 needs complete data (every person answered every item); with missing responses "
                               "the margins of different pairs come from different persons")
    n = x.shape[1]
    if n > MAX_ITEMS:
        raise CalibrationError(f"M2 on {n} items: at most {MAX_ITEMS} are done here; compute it on a section")
    nodes, k = problem.nodes, result.n_dims

    def prob(v):
        phi, sigma = problem.params.unpack(v)
        return expit(nodes @ phi[:, :k].T + phi[:, k]).T, np.exp(log_mvn_weights(nodes, sigma))

    weights = np.exp(log_mvn_weights(nodes, result.latent_cov))
    return _m2_result(x, prob, np.array(result.x, dtype=float), nodes, weights)
