"""Ability estimators, vectorized over examinees: EAP, MAP, ML (bounded) and WLE.

All four start from the same grid products (:func:`gather_on_grid`): the
log-likelihood of every examinee at every grid point is one matrix product
per response category. EAP is finished there (posterior mean and SD on the
grid, rectangle rule as in catR's ``eapEst`` and mirt's ``fscores``). MAP, ML
and WLE locate the maximum on the grid, bracket it between neighbouring grid
points, and then polish it with a safeguarded Newton iteration evaluated at
each examinee's own θ (bisection whenever a Newton step leaves the bracket),
so the result is the exact root to ``tol``, not a grid value.

Conventions
-----------
* ML and WLE are bounded to ``bounds``; when the maximum lies on a bound
  (all-correct or all-wrong patterns, for example) the bound is returned and
  ``at_bound`` says which (``-1`` lower, ``+1`` upper). Never ±inf or NaN.
* Standard errors: EAP -- posterior SD; MAP -- :math:`(I(\\hat\\theta) + 1/\\sigma^2)^{-1/2}`;
  ML and WLE -- :math:`I(\\hat\\theta)^{-1/2}`, with :math:`I` the test (expected,
  Fisher) information of the administered items, as catR's ``semTheta``
  (``se_information="expected"``, the default). ``se_information="observed"``
  follows mirt's ``fscores``: MAP and ML use minus the second derivative of
  the log-posterior / log-likelihood, WLE minus the slope of Warm's
  estimating function. The two agree for 1PL/2PL and GPCM items (their
  observed and expected information coincide).
* WLE solves Warm's (1989) equation
  :math:`\\partial_\\theta \\log L + J(\\theta) / (2 I(\\theta)) = 0` with
  :math:`J = \\sum_i\\sum_k P'_{ik}P''_{ik}/P_{ik}`.
* An examinee with no administered item gets the prior (EAP, MAP) or the
  midpoint of the bounds with ``se = inf`` and ``n_answered = 0`` (ML, WLE).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import norm

from ..exceptions import ScoringError
from ..irt.arrays import GridTables
from .responses import ResponseMatrix, SparseResponses, gather_on_grid, prepare_responses

__all__ = [
    "ThetaEstimate",
    "normal_log_prior",
    "grid_log_likelihood",
    "expected_a_posteriori",
    "maximum_a_posteriori",
    "maximum_likelihood",
    "weighted_likelihood",
    "METHODS",
]

METHODS = ("eap", "map", "ml", "wle")


@dataclass(frozen=True)
class ThetaEstimate:
    """Ability estimates for ``N`` examinees.

    Attributes
    ----------
    theta, se : ndarray, ``(N,)``
    method : str
    at_bound : ndarray of int8, ``(N,)`` -- -1/+1 when the estimate sits on the lower/upper bound
    converged : ndarray of bool, ``(N,)``
    n_answered : ndarray of int, ``(N,)``
    grid : ndarray, ``(Q,)`` or None -- EAP only
    log_posterior : ndarray, ``(N, Q)`` or None -- EAP only: normalized log posterior on ``grid``
    """

    theta: np.ndarray
    se: np.ndarray
    method: str
    at_bound: np.ndarray
    converged: np.ndarray
    n_answered: np.ndarray
    grid: np.ndarray | None = field(default=None, repr=False)
    log_posterior: np.ndarray | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return self.theta.size

    def summary(self) -> str:
        """A short text summary."""
        n = len(self)
        lines = [
            f"{self.method.upper()} estimates for {n} examinee(s)",
            f"  theta: mean {np.mean(self.theta):.4f}, sd {np.std(self.theta):.4f}, "
            f"range [{np.min(self.theta):.4f}, {np.max(self.theta):.4f}]",
            f"  se:    mean {np.mean(self.se[np.isfinite(self.se)]) if np.isfinite(self.se).any() else np.inf:.4f}",
            f"  on a bound: {int(np.count_nonzero(self.at_bound))}, "
            f"not converged: {int(np.count_nonzero(~self.converged))}, "
            f"no responses: {int(np.count_nonzero(self.n_answered == 0))}",
        ]
        return "\n".join(lines)


def _prepare(arrays, responses) -> ResponseMatrix | SparseResponses:
    """A dense matrix validated at the edge, or long-format :class:`SparseResponses` as they are."""
    return responses if isinstance(responses, SparseResponses) else prepare_responses(arrays, responses)


def normal_log_prior(grid: np.ndarray, mean: float = 0.0, sd: float = 1.0) -> np.ndarray:
    """Log of the N(mean, sd²) density at the grid points."""
    if not (np.isfinite(mean) and np.isfinite(sd) and sd > 0):
        raise ScoringError(f"the normal prior needs a finite mean and sd > 0, got mean={mean!r}, sd={sd!r}")
    return norm.logpdf(grid, loc=mean, scale=sd)


def grid_log_likelihood(tables: GridTables, resp: ResponseMatrix | SparseResponses) -> np.ndarray:
    """Log-likelihood of every examinee at every grid point, ``(N, Q)``."""
    return gather_on_grid(tables.log_prob, resp)


def _log_prior_on_grid(grid, prior_mean, prior_sd, prior):
    if prior is None:
        return normal_log_prior(grid, prior_mean, prior_sd)
    w = np.asarray(prior, dtype=float)
    if w.shape != grid.shape or np.any(~np.isfinite(w)) or np.any(w < 0) or not np.any(w > 0):
        raise ScoringError(
            f"a prior on the grid needs {grid.size} finite, non-negative weights (one per grid point), "
            f"not all zero; got shape {w.shape}"
        )
    with np.errstate(divide="ignore"):
        return np.log(w)


def expected_a_posteriori(arrays, responses, *, grid=None, prior_mean=0.0, prior_sd=1.0, prior=None) -> ThetaEstimate:
    """Expected a posteriori (EAP) estimates with posterior SDs (Bock & Mislevy 1982).

    Parameters
    ----------
    arrays : ItemArrays
    responses : array_like ``(N, I)`` (NaN = not administered) or ResponseMatrix
    grid : (lo, hi, n) or points; default 61 points on [-6, 6]
    prior_mean, prior_sd : float -- normal prior
    prior : array_like ``(Q,)``, optional -- prior weights on the grid (replaces the normal prior)

    Notes
    -----
    :math:`\\hat\\theta = \\sum_q \\theta_q w_q L(\\theta_q) / \\sum_q w_q L(\\theta_q)` on the
    grid (rectangle rule), computed with log-sum-exp.

    Examples
    --------
    >>> import numpy as np
    >>> from adaptive import ItemBank
    >>> from adaptive.scoring import expected_a_posteriori
    >>> bank = ItemBank(items=[{"id": f"Q{k}", "a": 1.0, "b": b} for k, b in enumerate([-1.0, 0.0, 1.0])])
    >>> est = expected_a_posteriori(bank.compile(), [[1, 1, 0]], grid=(-6, 6, 121))
    >>> round(float(est.theta[0]), 3)
    0.315
    """
    resp = _prepare(arrays, responses)
    tables = arrays.tables(grid)
    log_prior = _log_prior_on_grid(tables.theta, prior_mean, prior_sd, prior)
    log_post = grid_log_likelihood(tables, resp)
    log_post += log_prior
    # normalize in log space (log-sum-exp, in place: this runs on N x Q arrays)
    log_post -= log_post.max(axis=1, keepdims=True)
    post = np.exp(log_post)  # unnormalized; the largest entry of each row is 1
    total = post.sum(axis=1)
    log_post -= np.log(total)[:, None]
    # moments about the grid's centre: the cancellation in E[t^2] - E[t]^2 stays below 1e-12 here
    shift = 0.5 * (tables.theta[0] + tables.theta[-1])
    t = tables.theta - shift
    m1 = (post @ t) / total
    var = (post @ (t * t)) / total - m1 * m1
    theta = m1 + shift
    se = np.sqrt(np.maximum(var, 0.0))
    n = resp.n_persons
    return ThetaEstimate(
        theta=theta,
        se=se,
        method="eap",
        at_bound=np.zeros(n, dtype=np.int8),
        converged=np.ones(n, dtype=bool),
        n_answered=resp.n_answered,
        grid=tables.theta,
        log_posterior=log_post,
    )


# ----------------------------------------------------------------------------- point estimators


def _observed(arrays, theta, resp: ResponseMatrix | SparseResponses, need_warm: bool):
    """Score, second derivative, information (and Warm's J) of each examinee at its own θ.

    Returns arrays of shape ``(n,)``.
    """
    if isinstance(resp, SparseResponses):
        return resp.observed(arrays, theta, need_warm)
    tm = arrays.terms(theta)  # (n, I, K)
    cat = resp.category[..., None]
    m = resp.mask
    g = np.where(m, np.take_along_axis(tm.dlog_prob, cat, -1)[..., 0], 0.0).sum(1)
    h = np.where(m, np.take_along_axis(tm.d2log_prob, cat, -1)[..., 0], 0.0).sum(1)
    info = np.where(m, tm.information, 0.0).sum(1)
    j = np.where(m, tm.warm_j(), 0.0).sum(1) if need_warm else None
    return g, h, info, j


def _warm_function(arrays, theta, resp):
    g, _, info, j = _observed(arrays, theta, resp, True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return g + np.where(info > 0, j / (2.0 * info), 0.0)


def _bracketed_newton(fun, x0, lo, hi, tol=1e-9, max_iter=100):
    """Solve ``g(x) = 0`` for a decreasing crossing inside ``[lo, hi]``, vectorized.

    ``fun(x, rows) -> (g, dg)`` evaluates the estimating function and an
    approximation of its derivative for the examinees ``rows``. Newton steps
    that leave the current bracket, or whose slope is not negative, are
    replaced by bisection; the bracket shrinks with the sign of ``g``.
    """
    x, lo, hi = x0.copy(), lo.copy(), hi.copy()
    converged = np.zeros(x.size, dtype=bool)
    active = np.arange(x.size)
    for _ in range(max_iter):
        if active.size == 0:
            break
        xa = x[active]
        g, dg = fun(xa, active)
        lo[active] = np.where(g > 0, xa, lo[active])
        hi[active] = np.where(g < 0, xa, hi[active])
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(dg < 0, -g / dg, np.nan)
        cand = xa + step
        ok = np.isfinite(cand) & (cand > lo[active]) & (cand < hi[active])
        new = np.where(ok, cand, 0.5 * (lo[active] + hi[active]))
        new = np.where(g == 0, xa, new)
        done = (np.abs(new - xa) < tol) | (g == 0) | (hi[active] - lo[active] < tol)
        x[active] = new
        converged[active[done]] = True
        active = active[~done]
    return x, converged


def _point_estimate(arrays, resp, *, method, search_grid, bounds_flag, prior_mean, prior_sd,
                    se_information, tol, max_iter) -> ThetaEstimate:
    tables = arrays.tables(search_grid)
    pts = tables.theta
    n_q = pts.size
    n = resp.n_persons
    has_prior = method == "map"
    warm = method == "wle"
    inv_var = 1.0 / prior_sd**2 if has_prior else 0.0

    # estimating function on the grid: d/dθ of the objective
    score = gather_on_grid(tables.dlog_prob, resp)
    if has_prior:
        score -= (pts - prior_mean) * inv_var
    if warm:
        mask = resp.mask_float
        info_q = mask @ tables.information
        prob = np.exp(tables.log_prob)
        j_tab = np.einsum("iqk,iqk->iq", prob, tables.dlog_prob * (tables.d2log_prob + tables.dlog_prob**2))
        j_q = mask @ j_tab
        with np.errstate(divide="ignore", invalid="ignore"):
            score = score + np.where(info_q > 0, j_q / (2.0 * info_q), 0.0)
        objective = None
    else:
        objective = gather_on_grid(tables.log_prob, resp)
        if has_prior:
            objective = objective - 0.5 * (pts - prior_mean) ** 2 * inv_var

    # Candidate maxima: every down-crossing of the estimating function between neighbouring grid
    # points, plus a bound where the objective still rises towards it. The candidate with the
    # highest objective wins (for WLE, Warm's criterion log L + 0.5 log I, exact for the 1PL/2PL).
    if objective is None:
        loglik = gather_on_grid(tables.log_prob, resp)
        objective = loglik + 0.5 * np.log(np.maximum(info_q, 1e-300))
    neg_inf = -np.inf
    crossing = (score[:, :-1] > 0) & (score[:, 1:] <= 0)
    value = np.where(crossing, np.maximum(objective[:, :-1], objective[:, 1:]), neg_inf)
    lower_value = np.where(score[:, 0] <= 0, objective[:, 0], neg_inf)
    upper_value = np.where(score[:, -1] >= 0, objective[:, -1], neg_inf)
    candidates = np.column_stack([lower_value, value, upper_value])  # (N, Q + 1)
    best = np.argmax(candidates, axis=1)
    rows = np.arange(n)
    no_candidate = ~np.isfinite(candidates[rows, best])
    best = np.where(no_candidate, np.argmax(objective, axis=1) + 0, best)  # degenerate: fall back to the grid max
    left = np.clip(best - 1, 0, n_q - 2)
    lo = pts[left].astype(float)
    hi = pts[left + 1].astype(float)
    mask_any = resp.n_answered > 0
    at_lower = (best == 0) & ~no_candidate & (mask_any | has_prior)
    at_upper = (best == n_q) & ~no_candidate & (mask_any | has_prior)

    interior = ~(at_lower | at_upper) & (mask_any | has_prior)
    theta = np.where(at_lower, pts[0], np.where(at_upper, pts[-1], 0.5 * (lo + hi))).astype(float)
    converged = np.ones(n, dtype=bool)

    idx = np.flatnonzero(interior)
    if idx.size:
        sub = resp.rows(idx)

        def fun(x, active):
            g, h, info, j = _observed(arrays, x, sub.rows(active), warm)
            if has_prior:
                g = g - (x - prior_mean) * inv_var
                h = h - inv_var
            if warm:
                with np.errstate(divide="ignore", invalid="ignore"):
                    g = g + np.where(info > 0, j / (2.0 * info), 0.0)
            return g, h

        x0 = np.clip(theta[idx], lo[idx], hi[idx])
        x, conv = _bracketed_newton(fun, x0, lo[idx], hi[idx], tol=tol, max_iter=max_iter)
        theta[idx] = x
        converged[idx] = conv

    at_bound = np.zeros(n, dtype=np.int8)
    if bounds_flag:
        at_bound[at_lower] = -1
        at_bound[at_upper] = 1
    # standard errors at the estimate
    _, h, info, _ = _observed(arrays, theta, resp, False)
    if se_information == "expected":
        curvature = info
    elif warm:
        # minus the slope of Warm's estimating function (mirt's WLE standard error), by a
        # central difference of the analytic function
        eps = 1e-5
        up = _warm_function(arrays, theta + eps, resp)
        down = _warm_function(arrays, theta - eps, resp)
        curvature = -(up - down) / (2 * eps)
    else:
        curvature = -h
    total = curvature + inv_var
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.where(total > 0, 1.0 / np.sqrt(np.where(total > 0, total, 1.0)), np.inf)
    if not has_prior:
        none = ~mask_any
        theta[none] = 0.5 * (pts[0] + pts[-1])
        se[none] = np.inf
    else:
        none = ~mask_any
        theta[none] = prior_mean
        se[none] = prior_sd
    return ThetaEstimate(
        theta=theta, se=se, method=method, at_bound=at_bound, converged=converged, n_answered=resp.n_answered
    )


def _search_grid(lo, hi, step=0.05):
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ScoringError(f"bounds must be finite with lower < upper, got ({lo!r}, {hi!r})")
    return (float(lo), float(hi), int(np.ceil((hi - lo) / step)) + 1)


def _check_se(se_information):
    if se_information not in ("expected", "observed"):
        raise ScoringError(f"se_information must be 'expected' or 'observed', got {se_information!r}")


def maximum_a_posteriori(arrays, responses, *, prior_mean=0.0, prior_sd=1.0, bounds=(-6.0, 6.0),
                         se_information="expected", tol=1e-9, max_iter=100) -> ThetaEstimate:
    """Posterior mode with a normal prior (catR's "BM", mirt's "MAP").

    Maximizes :math:`\\log L(\\theta) - (\\theta-\\mu)^2 / (2\\sigma^2)` within ``bounds``
    (a search range: the mode of any sensible prior lies well inside it).
    SE: :math:`(I(\\hat\\theta) + \\sigma^{-2})^{-1/2}` (``se_information="observed"``: the
    negative second derivative of the log-likelihood in place of :math:`I`).
    """
    _check_se(se_information)
    if not (np.isfinite(prior_sd) and prior_sd > 0 and np.isfinite(prior_mean)):
        raise ScoringError(f"MAP needs a normal prior with finite mean and sd > 0, got {prior_mean!r}, {prior_sd!r}")
    resp = _prepare(arrays, responses)
    return _point_estimate(arrays, resp, method="map", search_grid=_search_grid(*bounds), bounds_flag=True,
                           prior_mean=prior_mean, prior_sd=prior_sd, se_information=se_information,
                           tol=tol, max_iter=max_iter)


def maximum_likelihood(arrays, responses, *, bounds=(-4.0, 4.0), se_information="expected",
                       tol=1e-9, max_iter=100) -> ThetaEstimate:
    """Maximum-likelihood estimates bounded to ``bounds`` (global maximum over the range).

    All-correct and all-wrong patterns (and any whose likelihood keeps rising
    to a bound) return that bound with ``at_bound`` set, and the SE of the
    information there.
    """
    _check_se(se_information)
    resp = _prepare(arrays, responses)
    return _point_estimate(arrays, resp, method="ml", search_grid=_search_grid(*bounds), bounds_flag=True,
                           prior_mean=0.0, prior_sd=1.0, se_information=se_information, tol=tol,
                           max_iter=max_iter)


def weighted_likelihood(arrays, responses, *, bounds=(-4.0, 4.0), se_information="expected",
                        tol=1e-9, max_iter=200) -> ThetaEstimate:
    """Warm's (1989) weighted likelihood estimates, bounded to ``bounds``.

    Solves :math:`\\sum_i \\partial_\\theta\\log P_{i,x_i}(\\theta) + J(\\theta)/(2I(\\theta)) = 0`.
    Finite for all-correct and all-wrong 1PL/2PL patterns; returns the bound
    (flagged) when the root lies outside the range.
    """
    _check_se(se_information)
    resp = _prepare(arrays, responses)
    return _point_estimate(arrays, resp, method="wle", search_grid=_search_grid(*bounds), bounds_flag=True,
                           prior_mean=0.0, prior_sd=1.0, se_information=se_information, tol=tol,
                           max_iter=max_iter)
