"""Limited-information goodness of fit: Maydeu-Olivares & Joe's M2 (dichotomous items) and its collapsed form
M2* (Cai & Hansen 2013; the ``Mord`` moments of Maydeu-Olivares & Joe 2006) for polytomous items.

With ``n`` items scored ``0..C_j - 1``, the first- and second-order moments ``π₂ = (E[x_i], E[x_i x_j], i < j)``
(``s = n + n(n-1)/2`` of them) are compared with their sample means ``p₂``:

``M2 = N (p₂ - π₂)ᵀ C₂ (p₂ - π₂)``, ``C₂ = Ξ₂⁻¹ - Ξ₂⁻¹ Δ₂ (Δ₂ᵀ Ξ₂⁻¹ Δ₂)⁻¹ Δ₂ᵀ Ξ₂⁻¹``

with ``Ξ₂`` the model covariance of the moments (mixed moments up to order four: by local independence
``E[Π x_j^m_j | θ] = Π E[x_j^m_j | θ]``, integrated over the latent distribution) and ``Δ₂ = ∂π₂/∂γ`` (central
differences in the free parameters; ``C₂`` projects out their span, so the parameterization does not matter).
``df = s - q`` (``s - rank Δ₂`` when the moments identify fewer directions, as for the independence model of
polytomous items). For 0/1 items these moments are the univariate and bivariate margins, and the statistic is M2;
with more categories it is M2*, mirt's default for polytomous items (``M2()``, ``type = "M2*"``), whose df may
run out when items have many categories (then it is refused, as mirt does).

Also reported: RMSEA₂ ``sqrt(max(M2 - df, 0) / ((N - 1) df))`` with its 90% interval ``sqrt(λ / (N df))`` at the
noncentralities λ where the noncentral χ² puts M2 at its 95th and 5th percentiles (mirt's two conventions, kept
so the numbers agree), SRMSR (the root mean squared residual correlation of item scores over item pairs), and CFI
and TLI against the independence model (each item its own category proportions, no latent trait), as mirt's
``M2()`` reports them.

The moments are integrals over N(0, 1) on the calibration's grid (61 points on [-6, 6] by default, as mirt), or
over the fitted N(0, Σ) on a multidimensional fit's product grid. Missing data: refused. With missing responses
the sample moments of different pairs come from different persons, and the statistic's distribution changes;
compute it on the complete cases or on a form without planned missingness.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
from scipy.optimize import brentq
from scipy.special import logsumexp
from scipy.stats import chi2, ncx2, norm

from ..exceptions import CalibrationError

__all__ = ["M2Result", "m2_statistic", "m2_multidim", "MAX_ITEMS"]

#: the most items M2 is computed for (60 items: 1,830 moments, about 5 s)
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
    #: "M2" (0/1 items: univariate and bivariate margins) or "M2*" (polytomous: first and second moments)
    type: str = "M2"

    def __repr__(self) -> str:
        return (f"M2Result({self.type} = {self.statistic:.4f}, df = {self.df}, p = {self.p_value:.4g}; "
                f"RMSEA {self.rmsea:.4f} "
                f"[{self.rmsea_ci[0]:.4f}, {self.rmsea_ci[1]:.4f}], SRMSR {self.srmsr:.4f}, CFI {self.cfi:.4f}, "
                f"TLI {self.tli:.4f})")


def _moment_sets(n: int):
    sets = [(i,) for i in range(n)] + list(combinations(range(n), 2))
    ind = np.zeros((len(sets), n))
    for k, st in enumerate(sets):  # the s moments as item indicators
        ind[k, list(st)] = 1.0
    return sets, ind


class _GridMoments:
    """Expected products of item scores on one grid: ``E[Π_j x_j^{m_j}] = Σ_q w_q Π_j E[x_j^{m_j} | θ_q]`` (local
    independence), from category probabilities ``(n, Q, C)`` and weights ``(Q,)``."""

    def __init__(self, probs, weights):
        score = np.arange(probs.shape[2], dtype=float)
        self.log1 = np.log(np.clip(probs @ score, 1e-300, None))
        self.log2 = np.log(np.clip(probs @ score ** 2, 1e-300, None))
        self.weights = weights

    def expect(self, power) -> np.ndarray:
        """``(M,)`` for powers ``(M, n)`` in {0, 1, 2}."""
        return np.exp((power == 1) @ self.log1 + (power == 2) @ self.log2) @ self.weights


class _BlockMoments:
    """Expected products of item scores under a bifactor or two-tier model, by dimension reduction: given the
    general factors g, the specific factors are independent, so ``E[Π_j x_j^{m_j}] = Σ_g w_g Π_{j on general only}
    E[x_j^{m_j} | g] Π_s Σ_q w_q Π_{j in s} E[x_j^{m_j} | g, q]`` -- an integral over G + 1 dimensions per specific
    factor, never over all G + S (the moments of up to four items that M2's covariance needs included)."""

    def __init__(self, problem, x):
        from ..irt.linear import log_mvn_weights, log_prob

        phi, sigma = problem.params.unpack(x)
        self.n_items = problem.n_items
        self.q_g = problem.general_nodes.shape[0]
        self.log_wg = log_mvn_weights(problem.general_nodes, sigma[:problem.n_general, :problem.n_general])
        self.log_w = problem.log_w
        self.blocks = []  # (specific?, rows, log E[x | .], log E[x² | .]) on the block's nodes
        for s, rows, _layout, nodes, _step in problem.blocks:
            probs = np.exp(log_prob(problem.kind[rows], problem.n_cat[rows], phi[rows], nodes))
            grid = _GridMoments(probs, None)
            self.blocks.append((s >= 0, rows, grid.log1, grid.log2))

    def expect(self, power) -> np.ndarray:
        m = power.shape[0]
        out = np.empty(m)
        step = max(1, 4_000_000 // (self.q_g * max(self.log_w.size, 1)))
        for lo in range(0, m, step):
            pw = power[lo:lo + step]
            total = np.broadcast_to(self.log_wg, (pw.shape[0], self.q_g)).copy()
            for specific, rows, log1, log2 in self.blocks:
                part = (pw[:, rows] == 1) @ log1 + (pw[:, rows] == 2) @ log2          # (M, Qg) or (M, Qg * Q)
                if specific:
                    part = logsumexp(part.reshape(pw.shape[0], self.q_g, -1) + self.log_w[None, None, :], axis=2)
                total += part
            out[lo:lo + step] = np.exp(logsumexp(total, axis=1))
        return out


def _grid_engine(prob_fn, weights):
    """``params -> _GridMoments`` for category probabilities ``prob_fn(params) -> (n, Q, C)`` (or ``(probabilities,
    weights)`` when the weights depend on the parameters, e.g. correlations)."""
    def make(params):
        out = prob_fn(params)
        p, w = out if isinstance(out, tuple) else (out, weights)
        return _GridMoments(p, w)
    return make


def _moments(engine, ind):
    """π₂, Ξ₂ and the items' marginal E[x²] from a moment engine."""
    pi2 = engine.expect(ind)
    s, n = ind.shape
    joint = np.empty((s, s))
    block = max(1, 2_000_000 // max(s * n, 1))  # rows per block: a few million cells at a time
    for start in range(0, s, block):  # each product of two moments: an item in both enters squared
        power = (ind[start:start + block, None, :] + ind[None, :, :]).reshape(-1, n)
        joint[start:start + block] = engine.expect(power).reshape(-1, s)
    return pi2, joint - np.outer(pi2, pi2), engine.expect(2.0 * np.eye(n))


def _m2_core(parts, params):
    """M2 of a model on one or more independent groups: ``parts`` is a list of ``(x_g, make_g)``, ``make_g(params)``
    the group's moment engine (parameters shared). The groups' residual moments ``√N_g (p_g - π_g)`` are stacked,
    with a block-diagonal Ξ₂ and the stacked ``√N_g Δ_g`` (one group: M2 as above). Returns the statistic, df and
    each group's ``(observed, model moments, model E[x²])``."""
    resid, xis, deltas, per_group = [], [], [], []
    h = 1e-5
    for x, make in parts:
        n_persons, n = x.shape
        sets, ind = _moment_sets(n)
        observed = np.concatenate([x.mean(axis=0), [np.mean(x[:, i] * x[:, j]) for i, j in sets[n:]]])
        pi2, xi, square = _moments(make(params), ind)
        delta = np.zeros((len(sets), params.size))
        for j in range(params.size):  # central differences, one parameter at a time
            up, down = params.copy(), params.copy()
            up[j] += h
            down[j] -= h
            delta[:, j] = (make(up).expect(ind) - make(down).expect(ind)) / (2 * h)
        root = np.sqrt(n_persons)
        resid.append(root * (observed - pi2))
        xis.append(xi)
        deltas.append(root * delta)
        per_group.append((observed, pi2, square))
    r, dl = np.concatenate(resid), np.vstack(deltas)
    xi_all = np.zeros((r.size, r.size))
    at = 0
    for xi in xis:
        xi_all[at:at + xi.shape[0], at:at + xi.shape[0]] = xi
        at += xi.shape[0]
    # C₂ = Δc (Δcᵀ Ξ Δc)⁻¹ Δcᵀ with Δc an orthonormal basis of the complement of span(Δ): the same matrix as
    # Ξ⁻¹ - Ξ⁻¹Δ(ΔᵀΞ⁻¹Δ)⁻¹ΔᵀΞ⁻¹ when Δ has full column rank, and well defined when the moments identify fewer
    # directions than there are parameters (df = moments - rank Δ)
    u, sv, _ = np.linalg.svd(dl, full_matrices=True)
    rank = int(np.sum(sv > 1e-8 * sv[0])) if sv.size and sv[0] > 0 else 0
    comp = u[:, rank:]
    c2 = comp @ np.linalg.solve(comp.T @ xi_all @ comp, comp.T)
    return float(r @ c2 @ r), r.size - rank, per_group


def _srmsr(x, observed, pi2, square) -> float:
    """Root mean squared residual correlation of the item scores over item pairs."""
    n = x.shape[1]
    o1, oij, pi1, pij = observed[:n], observed[n:], pi2[:n], pi2[n:]
    i, j = np.triu_indices(n, 1)  # the order of combinations(range(n), 2)
    o_var = (x ** 2).mean(axis=0) - o1 ** 2
    m_var = square - pi1 ** 2
    r_obs = (oij - o1[i] * o1[j]) / np.sqrt(o_var[i] * o_var[j])
    r_mod = (pij - pi1[i] * pi1[j]) / np.sqrt(m_var[i] * m_var[j])
    return float(np.sqrt(np.mean((r_obs - r_mod) ** 2)))


def _check_data(x, n_cat):
    if not np.isfinite(x).all():
        raise CalibrationError("M2 needs complete data (every person answered every item); with missing responses "
                               "the moments of different pairs come from different persons: compute it on the "
                               "complete cases")
    n = x.shape[1]
    if n < 3:
        raise CalibrationError("M2 needs at least 3 items (with 2 there are no degrees of freedom)")
    if n > MAX_ITEMS:
        raise CalibrationError(f"M2 on {n} items means {n + n * (n - 1) // 2} moments and a covariance matrix of "
                               f"their fourth-order moments; at most {MAX_ITEMS} items are done here. Compute it on "
                               "a section of the form (a subset of the columns and of the bank), or use S-X2")
    bad = np.flatnonzero(((x < 0) | (x >= n_cat[None, :]) | (x != np.round(x))).any(axis=0))
    if bad.size:
        raise CalibrationError(f"responses of item column {int(bad[0])} are not the categories 0..{n_cat[bad[0]] - 1} "
                               "of its model")


def m2_statistic(bank, responses, *, grid=(-6.0, 6.0, 61)) -> M2Result:
    """M2 (dichotomous items) or M2* (any polytomous item) of ``bank``'s unidimensional items, the model's free
    parameters as estimated, on complete ``responses (N, n)`` in the bank's item order; see the module
    docstring."""
    from ..irt.arrays import theta_grid
    from ..irt.mixed import from_irt, internal_log_prob
    from ..irt.registry import model_spec

    x = np.asarray(responses, dtype=float)
    arr = bank.compile()
    if x.ndim != 2 or x.shape[1] != arr.n_items:
        raise CalibrationError(f"responses have shape {x.shape}; give (N, {arr.n_items}) in the bank's item order")
    _check_data(x, arr.n_cat)
    pts = theta_grid(grid)
    w = norm.pdf(pts)
    w /= w.sum()
    specs = [model_spec(it.model) for it in bank.items]
    width = max(sp.n_internal(int(c)) for sp, c in zip(specs, arr.n_cat))
    phi0 = from_irt(arr.family, arr.n_cat, arr.a, arr.thresholds, arr.c, arr.d, width)
    free = np.array([sp.free_internal(int(c), width) for sp, c in zip(specs, arr.n_cat)])
    common = np.array([sp.slope == "common" for sp in specs])
    n_free = int(free.sum())

    def prob(v):
        phi = phi0.copy()
        phi[free] = v[:n_free]
        phi[common, 0] = v[n_free:]  # the one slope the 1PL items share (no entry when there are none)
        return np.exp(internal_log_prob(arr.family, arr.n_cat, phi, pts))

    params = np.concatenate([phi0[free], phi0[common, 0][:1]])
    return _m2_result(x, _grid_engine(prob, w), params, arr.n_cat)


def _m2_result(x, make, params, n_cat, groups=None) -> M2Result:
    """M2 or M2*, its df and p-value, RMSEA with its interval, SRMSR, CFI and TLI for the model ``make(params)`` (a
    moment engine: :class:`_GridMoments` or, for bifactor and two-tier fits, :class:`_BlockMoments`). ``groups``:
    ``[(x_g, make_g)]`` of a multiple-group fit instead of ``x`` and ``make`` (SRMSR then the groups' mean)."""
    parts = [(x, make)] if groups is None else groups
    stat, df, per_group = _m2_core(parts, params)
    if df < 1:
        raise CalibrationError(f"the model's {params.size} parameters leave no degrees of freedom among the first and "
                               "second moments for M2 (polytomous items with many categories use them up; collapse "
                               "categories or compute it on more items)")
    k_max = int(n_cat.max())
    null_stat, null_df = 0.0, 0
    for xg, _make in parts:  # the independence model of each group: its own category proportions, no trait
        s_g, d_g = _independence_m2(xg, n_cat)
        null_stat, null_df = null_stat + s_g, null_df + d_g
    n_persons = sum(xg.shape[0] for xg, _make in parts)
    rmsea = float(np.sqrt(max(stat - df, 0.0) / ((n_persons - 1) * df)))
    ci = tuple(_rmsea_bound(stat, df, n_persons, q) for q in (0.95, 0.05))
    d_null = max(null_stat - null_df, 0.0)
    cfi = float(1.0 - max(stat - df, 0.0) / max(d_null, stat - df, 1e-12))
    tli = float((null_stat / null_df - stat / df) / (null_stat / null_df - 1.0))
    srmsr = float(np.mean([_srmsr(xg, *pieces) for (xg, _make), pieces in zip(parts, per_group, strict=True)]))
    return M2Result(statistic=stat, df=int(df), p_value=float(chi2.sf(stat, df)), rmsea=rmsea,
                    rmsea_ci=(float(ci[0]), float(ci[1])), srmsr=srmsr, cfi=cfi, tli=tli,
                    type="M2" if k_max <= 2 else "M2*")


def _independence_m2(x, n_cat) -> tuple[float, int]:
    """M2 and df of the independence model on ``x``: each item its own category proportions, no latent trait."""
    k_max = int(n_cat.max())
    observed_p = np.stack([(x == c).mean(axis=0) for c in range(k_max)], axis=1)
    has = np.arange(k_max)[None, 1:] < n_cat[:, None]
    logits0 = np.log(np.clip(observed_p[:, 1:], 1e-12, None) / np.clip(observed_p[:, :1], 1e-12, None))[has]

    def null_prob(v):
        logits = np.full((x.shape[1], k_max), -np.inf)
        logits[:, 0] = 0.0
        logits[:, 1:][has] = v
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        return _GridMoments(p[:, None, :], np.ones(1))

    stat, df, _ = _m2_core([(x, null_prob)], logits0)
    return stat, df


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
    """M2 (M2PL items) or M2* (multidimensional graded or GPCM items) of a multidimensional fit
    (:class:`~adaptive.calibration.multidim_result.MultidimResult`, confirmatory or exploratory) on its complete
    data: moments integrated on the fit's product grid with the fitted N(0, Σ) weights (bifactor and two-tier
    fits: by dimension reduction, :class:`_BlockMoments`); the free parameters (slopes, intercepts and the
    estimated correlations) are those of the fit, so Δ₂ has a column for each correlation too."""
    from ..irt.linear import LinearKind, log_prob
    from .multidim import LinearProblem, log_mvn_weights

    problem = result.problem
    if not isinstance(problem, LinearProblem):  # bifactor or two-tier: moments by dimension reduction
        x = problem.values
        _check_data(x, result.n_cat)
        return _m2_result(x, lambda v: _BlockMoments(problem, v), np.array(result.x, dtype=float), result.n_cat)
    if np.any(result.kind == LinearKind.NOMINAL):
        raise CalibrationError("M2* needs ordered item scores; the nominal model's categories have no order")
    if getattr(problem, "integration", "grid") == "qmc":
        raise CalibrationError("M2 is computed on the fit's product grid; this fit used quasi-Monte Carlo EM (more "
                               "than 3 factors): refit with integration='grid' (up to 5 factors) for M2")
    x = problem.values
    _check_data(x, result.n_cat)
    nodes = problem.nodes

    def prob(v):
        phi, sigma = problem.params.unpack(v)
        probs = np.exp(log_prob(result.kind, result.n_cat, phi, nodes))  # (n, Q, C)
        return probs, np.exp(log_mvn_weights(nodes, sigma, problem.params.mean_of(v)))

    params = np.array(result.x, dtype=float)
    if problem.params.n_groups > 1:  # the groups' moments stacked, parameters shared
        codes = problem.layout.groups

        def group_engine(q):
            def make(v):
                phi, _ = problem.params.unpack(v)
                sigmas, means = problem.params.latents(v)
                return _GridMoments(np.exp(log_prob(result.kind, result.n_cat, phi, nodes)),
                                    np.exp(log_mvn_weights(nodes, sigmas[q], means[q])))
            return make

        parts = [(x[codes == q], group_engine(q)) for q in range(problem.params.n_groups)]
        return _m2_result(x, None, params, result.n_cat, groups=parts)
    weights = np.exp(log_mvn_weights(nodes, result.latent_cov, result.latent_mean))
    return _m2_result(x, _grid_engine(prob, weights), params, result.n_cat)
