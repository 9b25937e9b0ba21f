"""Marginal ML by EM for the models of :mod:`adaptive.irt.linear`: multidimensional (M2PL, MGRM, MGPCM) and nominal.

The E-step is the unidimensional one (:class:`~adaptive.calibration.layout.IndicatorLayout`: one matrix product
of the response indicators with a table of log-probabilities at the nodes), on a product grid of ``Q`` points per
dimension on ``[-6, 6]`` (mirt's ``quadpts``: 61 / 31 / 15 / 9 / 7 for 1 / 2 / 3 / 4 / 5 dimensions) whose
weights are the N(0, Σ) density at the nodes normalized to sum 1, recomputed from the current Σ each cycle
(as mirt's MML-EM). Missing cells drop out of the likelihood.

M-step: items by Fisher scoring with step halving, all items at once on ``(I, Q, C, p)`` derivative arrays;
parameters an item does not have (a slope fixed at 0 by a confirmatory pattern or by the exploratory
identification) stay put. The latent correlations maximize the expected complete-data log-likelihood of the
normalized grid weights (so each cycle is a true EM step for the log-likelihood on the grid), by L-BFGS on the
free correlations; means are 0 and variances 1. SQUAREM and the convergence rule are :func:`~adaptive.
calibration.em.run_em`'s (largest parameter change below ``tol`` and a log-likelihood gain below noise).

Identification (as mirt): confirmatory -- each item loads on the factors its pattern names, the latent
correlations are free unless ``correlated=False``; exploratory with K factors -- ``a_jk = 0`` for ``k > j`` on
the first K - 1 items and Σ = I, to be rotated afterwards (:meth:`~adaptive.calibration.multidim_result.
MultidimResult.rotate`).
"""

from __future__ import annotations

import math

import numpy as np

from ..irt.linear import (
    KIND_OF_MODEL,
    LinearKind,
    extra_column,
    log_mvn_weights,
    log_prob,
    n_internal,
    prob_jacobian,
    product_grid,
)
from .em import EStep
from .factored import FactoredEStep
from .latent import latent_mstep, latent_score
from .layout import IndicatorLayout
from .mparams import _Params
from .priors import _direct, _logit_scale
from .starts import start_values as unidimensional_starts

__all__ = ["LinearProblem", "product_grid", "DEFAULT_POINTS", "MAX_PRODUCT_DIMS", "log_mvn_weights"]

#: mirt's default quadrature points per dimension, by number of dimensions
DEFAULT_POINTS = {1: 61, 2: 31, 3: 15, 4: 9, 5: 7}
#: the most dimensions integrated on a product grid
MAX_PRODUCT_DIMS = 5


class ItemMStep:
    """The items' M-step on a set of nodes: Fisher scoring with step halving for all items at once; entries that
    are not ``free`` stay put."""

    def __init__(self, kind, n_cat, free, nodes, priors=None):
        self.kind, self.n_cat = np.asarray(kind), np.asarray(n_cat)
        self.free = np.asarray(free, dtype=bool)
        self.nodes = np.asarray(nodes, dtype=float)
        #: item-parameter priors {"a" | "intercept" | "c": Prior} (see :func:`linear_prior_terms`)
        self.priors = dict(priors or {})

    def _prior(self, phi, rows):
        if not self.priors:
            return None
        return linear_prior_terms(self.priors, self.kind[rows], self.free[rows], phi, self.nodes.shape[1])

    def gradient(self, phi, r) -> np.ndarray:
        """``(I, p)`` gradient of the expected complete-data log-likelihood (the marginal score at the E-step's
        parameters, by Fisher's identity), plus the log prior's."""
        return self._grad_fisher(phi, r, np.arange(phi.shape[0]))[0]

    def _objective(self, phi, r, rows):
        with np.errstate(invalid="ignore", divide="ignore"):
            logp = log_prob(self.kind[rows], self.n_cat[rows], phi, self.nodes)
            r = r[:, :, :logp.shape[2]]  # these items' categories (fixed items may have had more)
            f = np.einsum("iqc,iqc->i", r, np.where(r > 0, logp, 0.0))
        prior = self._prior(phi, rows)
        if prior is not None:
            f = f + prior[0]
        return np.where(np.isfinite(f), f, -np.inf)

    def _grad_fisher(self, phi, r, rows):
        prob, jac = prob_jacobian(self.kind[rows], self.n_cat[rows], phi, self.nodes)
        r = r[:, :, :prob.shape[2]]
        with np.errstate(divide="ignore", invalid="ignore"):
            inv_p = np.where(prob > 1e-300, 1.0 / prob, 0.0)
        grad = np.einsum("iqc,iqcp->ip", r * inv_p, jac)
        n_q = r.sum(axis=2)
        fisher = np.einsum("iqcp,iqcs->ips", jac * (n_q[:, :, None] * inv_p)[..., None], jac)
        prior = self._prior(phi, rows)
        if prior is not None:
            _, g, curv = prior
            grad += g
            fisher += curv[:, :, None] * np.eye(phi.shape[1])[None]
        return grad, fisher

    def run(self, phi, r, max_newton=25, tol=1e-8):
        """Maximize every item's expected complete-data log-likelihood ``Σ_q Σ_k r_qk log P_k(θ_q)``."""
        free = self.free
        phi = phi.copy()
        active = np.array(free.any(axis=1), dtype=bool)
        f = np.full(phi.shape[0], -np.inf)
        rows0 = np.flatnonzero(active)
        if rows0.size == 0:  # every item fixed: only the latent distribution is estimated
            return phi
        f[rows0] = self._objective(phi[rows0], r[rows0], rows0)
        eye = np.eye(phi.shape[1])
        for _ in range(max_newton):
            idx = np.flatnonzero(active)
            if idx.size == 0:
                break
            ph = phi[idx]
            grad, fisher = self._grad_fisher(ph, r[idx], idx)
            fr = free[idx]
            mat = np.where(fr[:, :, None] & fr[:, None, :], fisher, eye[None])
            diag = np.maximum(np.abs(np.diagonal(mat, axis1=1, axis2=2)), 1e-12)
            mat = mat + 1e-10 * diag[:, :, None] * eye[None]
            grad = np.where(fr, grad, 0.0)
            try:
                step = np.linalg.solve(mat, grad[:, :, None])[:, :, 0]
            except np.linalg.LinAlgError:
                step = grad / diag
            step = np.where(fr, step, 0.0)
            step /= np.maximum(1.0, np.abs(step).max(axis=1, keepdims=True) / 2.0)  # at most 2 units a step
            taken = np.zeros(idx.size)
            pend = np.arange(idx.size)
            mult = 1.0
            for _half in range(30):
                rows = idx[pend]
                trial = ph[pend] + mult * step[pend]
                f_new = self._objective(trial, r[rows], rows)
                ok = f_new >= f[rows] - 1e-12 * np.abs(f[rows])
                acc = pend[ok]
                phi[idx[acc]] = trial[ok]
                f[idx[acc]] = f_new[ok]
                taken[acc] = np.abs(mult * step[acc]).max(axis=1)
                pend = pend[~ok]
                if pend.size == 0:
                    break
                mult /= 2
            active[idx[taken < tol]] = False
        return phi


def linear_prior_terms(priors, kind, free, phi, n_dims):
    """Log prior per item ``(I,)``, its gradient ``(I, p)`` and its curvature ``(I, p)`` (minus the second
    derivative, floored at 0 so that Fisher scoring keeps a positive definite matrix; step halving on the log
    posterior keeps every step an ascent) in the internal parameters. ``priors``: ``"a"`` normal or lognormal on
    every free slope, ``"intercept"`` normal on every free intercept, ``"c"`` beta on the M3PL lower asymptote
    (a density in c, differentiated in logit c); nominal items take none."""
    n_i, p = phi.shape
    lp, grad, curv = np.zeros(n_i), np.zeros((n_i, p)), np.zeros((n_i, p))
    ordinary = np.asarray(kind) != LinearKind.NOMINAL

    def add(rows, col, terms):
        v, g, h = terms
        lp[rows] += v
        grad[rows, col] += g
        curv[rows, col] += np.maximum(-h, 0.0)

    columns = {"a": range(n_dims), "intercept": range(n_dims, extra_column(n_dims, p))}
    for name, cols in columns.items():
        if name in priors:
            for col in cols:
                rows = free[:, col] & ordinary
                add(rows, col, _direct(priors[name], phi[rows, col]))
    if "c" in priors:
        col = extra_column(n_dims, p)
        rows = free[:, col] & (np.asarray(kind) == LinearKind.LOGISTIC3)
        add(rows, col, _logit_scale(priors["c"], phi[rows, col]))
    return lp, grad, curv


class ObservedInformation:
    """Observed information of a problem with a ``score(x)`` (the marginal score) method, and the log prior of
    its items (``priors``, ``kind``, ``params.free``)."""

    priors: dict
    kind: np.ndarray
    params: _Params

    def log_prior(self, phi) -> float:
        """The items' log prior (0 without priors): what EM maximizes is the log-likelihood plus this."""
        if not self.priors:
            return 0.0
        n_dims = int(self.params.slope_dims)
        return float(linear_prior_terms(self.priors, self.kind, self.params.free, phi, n_dims)[0].sum())

    def score(self, x) -> np.ndarray:
        raise NotImplementedError

    def observed_information(self, x, h=1e-5) -> np.ndarray:
        """Minus the Jacobian of :meth:`score` by forward differences (Oakes 1999: the derivative of the
        complete-data score over the E-step's parameters is the missing-information term), symmetrized: one E-step
        per free parameter plus one. The step's truncation error is O(h) relative (about 1e-5 on the SEs)."""
        n = x.size
        base = self.score(x)
        info = np.empty((n, n))
        for j in range(n):
            e = np.zeros(n)
            e[j] = h
            info[:, j] = -(self.score(x + e) - base) / h
        return 0.5 * (info + info.T)


class LinearProblem(ObservedInformation):
    """One multidimensional (or nominal) calibration: data layout, parameter vector, E- and M-steps.

    Parameters
    ----------
    values : (N, I) float, NaN = missing; kind, n_cat : (I,) :class:`~adaptive.irt.linear.LinearKind` codes and
        category counts; phi0, free : (I, p) start values and the estimated entries; nodes : (Q, K) grid;
        sigma0 : (K, K) start latent correlation matrix; corr_free : (K, K) bool, the estimated correlations
        (diagonal: variances), or ``(G, K, K)`` per group; mean_free : (K,) or (G, K) the estimated means;
        groups : (N,) group codes 0..G-1 (0 the reference group) and n_groups : G (:mod:`.mparams`)
    """

    def __init__(self, values, kind, n_cat, phi0, free, nodes, sigma0, corr_free, dtype=np.float64, priors=None,
                 mean_free=None, groups=None, n_groups=1):
        self.kind = np.asarray(kind)
        self.n_cat = np.asarray(n_cat)
        self.nodes = np.asarray(nodes, dtype=float)
        self.n_dims = self.nodes.shape[1]
        self.params = _Params(phi0, free, sigma0, corr_free, self.n_dims, mean_free=mean_free, n_groups=n_groups)
        self._values = np.asarray(values, dtype=float)
        self.n_items = self._values.shape[1]
        self.priors: dict = dict(priors or {})
        #: exploratory: Σ = I and PX-EM steps (see :meth:`_expand_and_reduce`)
        self.expanded = False
        pattern = self.params.free[:, :self.n_dims] | (self.params.phi0[:, :self.n_dims] != 0)
        axis = np.unique(self.nodes[:, 0])
        self.factored: FactoredEStep | None = None
        if n_groups == 1 and FactoredEStep.applies(pattern) and axis.size ** self.n_dims == self.nodes.shape[0]:
            self.factored = FactoredEStep(self._values, self.n_cat, pattern, axis, dtype)
            self.group_steps = [ItemMStep(self.kind[rows], self.n_cat[rows], self.params.free[rows], nodes,
                                          self.priors)
                                for _dims, rows, _layout, nodes in self.factored.groups]
        else:
            codes = np.zeros(len(values), dtype=np.intp) if groups is None else np.asarray(groups, dtype=np.intp)
            self.layout = IndicatorLayout(values, n_cat, codes, n_groups, self.nodes.shape[0], dtype)
            self.items_step = ItemMStep(self.kind, self.n_cat, self.params.free, self.nodes, self.priors)

    @property
    def values(self) -> np.ndarray:
        return self._values

    def log_weights(self, sigma, mean=None) -> np.ndarray:
        return log_mvn_weights(self.nodes, sigma, mean)[None, :]

    def log_prob(self, phi) -> np.ndarray:
        return log_prob(self.kind, self.n_cat, phi, self.nodes)

    def estep(self, x, count_dtype=np.float64) -> EStep | None:
        phi, _ = self.params.unpack(x)
        sigmas, means = self.params.latents(x)
        try:
            lw = np.vstack([self.log_weights(sg, mu) for sg, mu in zip(sigmas, means, strict=True)])
        except np.linalg.LinAlgError:
            return None  # a correlation matrix that is not positive definite
        if self.factored is not None:
            logps = []
            for _dims, rows, _layout, nodes in self.factored.groups:
                with np.errstate(invalid="ignore", divide="ignore"):
                    logps.append(log_prob(self.kind[rows], self.n_cat[rows], phi[rows], nodes))
                if not np.all(np.isfinite(logps[-1])):
                    return None
            ll, counts, mass = self.factored.run(logps, lw[0], count_dtype)
            return EStep(ll, ll + self.log_prior(phi), counts, mass[None, :])
        with np.errstate(invalid="ignore", divide="ignore"):
            logp = self.log_prob(phi)
        if not np.all(np.isfinite(logp)):
            return None
        post, ll = self.layout.posterior(logp, lw, fast=count_dtype == np.float32)
        r, g_mass = self.layout.counts(post, count_dtype)
        return EStep(ll, ll + self.log_prior(phi), r, g_mass)

    # ------------------------------------------------------------------ M-step
    def mstep_items(self, phi, r, tol=1e-8):
        if self.factored is None:
            return self.items_step.run(phi, r, tol=tol)
        phi = phi.copy()
        for (_dims, rows, _layout, _nodes), step, counts in zip(self.factored.groups, self.group_steps, r, strict=True):
            phi[rows] = step.run(phi[rows], counts, tol=tol)
        return phi

    def item_gradient(self, phi, r) -> np.ndarray:
        if self.factored is None:
            return self.items_step.gradient(phi, r)
        grad = np.zeros_like(phi)
        for (_dims, rows, _layout, _nodes), step, counts in zip(self.factored.groups, self.group_steps, r, strict=True):
            grad[rows] = step.gradient(phi[rows], counts)
        return grad

    def em_map(self, x, stats: EStep, mstep_tol=1e-8):
        phi, _ = self.params.unpack(x)
        sigmas, means = self.params.latents(x)
        phi = self.mstep_items(phi, stats.counts, tol=mstep_tol)
        if self.expanded:
            phi = self._expand_and_reduce(phi, stats.group_mass[0])
            return self.params.pack(phi, sigmas, means)
        for q in range(self.params.n_groups):
            pairs, mass = self.params.group_pairs[q], stats.group_mass[q]
            if self.params.group_moments_free(q):  # fixed items or a focal group: means and (co)variances free
                sigmas[q], means[q] = latent_mstep(self.nodes, sigmas[q], pairs, mass, means[q],
                                                   self.params.means_free[q])
            else:
                sigmas[q] = latent_mstep(self.nodes, sigmas[q], pairs, mass)
        return self.params.pack(phi, sigmas, means)

    def _expand_and_reduce(self, phi, mass):
        """PX-EM for the exploratory model (Liu, Rubin & Wu 1998): the latent mean and covariance, free in the
        expanded model, are the posterior moments; mapping back to N(0, I) moves them into the items (``a ← Lᵀa``,
        ``d ← d + k a·m``), and an orthogonal rotation (QR) restores the zero pattern of the first K - 1 items.
        Neither map changes the likelihood, and the expanded M-step converges much faster along the directions
        where plain EM crawls."""
        k = self.n_dims
        total = float(mass.sum())
        m = mass @ self.nodes / total
        centred = self.nodes - m
        cov = (mass[:, None] * centred).T @ centred / total
        try:
            chol = np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            return phi
        phi = phi.copy()
        a = phi[:, :k]
        shift = a @ m                                   # (I,)
        n_int = phi.shape[1] - k
        scores = np.ones((self.n_items, n_int))
        gpcm = self.kind == LinearKind.GPCM
        scores[gpcm] = np.arange(1, n_int + 1)[None, :]
        intercepts = phi[:, k:]
        intercepts += np.where(self.params.free[:, k:], scores * shift[:, None], 0.0)
        a = a @ chol
        q = np.linalg.qr(a[:k - 1].T, mode="complete")[0]  # a[:k-1] @ q is lower triangular
        a = a @ q
        a[:, :k][~self.params.free[:, :k]] = 0.0
        sign = np.where(a.sum(axis=0) < 0, -1.0, 1.0)
        phi[:, :k] = a * sign
        return phi

    # ------------------------------------------------------------------ observed information (Oakes)
    def score(self, x) -> np.ndarray:
        """The marginal score at ``x`` (Fisher's identity: the complete-data score at the E-step's counts)."""
        stats = self.estep(x, np.float64)
        if stats is None:
            raise FloatingPointError("non-finite likelihood")
        phi, _ = self.params.unpack(x)
        out = [self.item_gradient(phi, stats.counts).ravel()[self.params.free_idx]]
        sigmas, means = self.params.latents(x)
        cov_parts, mean_parts = [], []
        for q in range(self.params.n_groups):
            pairs, mfree = self.params.group_pairs[q], self.params.means_free[q]
            both = latent_score(self.nodes, sigmas[q], pairs, stats.group_mass[q], means[q], mfree)
            cov_parts.append(both[:pairs[0].size])
            mean_parts.append(both[pairs[0].size:])
        return np.concatenate(out + cov_parts + mean_parts)


def start_values(values, models, n_cat, pattern, exploratory):
    """Start values ``phi (I, p)``: unidimensional starts (item-total correlations, proportions) spread over each
    item's factors; exploratory starts from the principal axes of the inter-item correlations."""
    n_items, n_dims = pattern.shape
    k_max = int(np.max(n_cat))
    kinds = np.array([KIND_OF_MODEL[m] for m in models])
    uni = ["gpcm" if KIND_OF_MODEL[m] == LinearKind.NOMINAL else m for m in models]
    phi1 = unidimensional_starts(values, uni, n_cat, {})
    if phi1.shape[1] < 3:
        phi1 = np.column_stack([phi1, np.zeros((n_items, 3 - phi1.shape[1]))])
    phi = np.zeros((n_items, n_internal(n_dims, k_max)))
    a0 = phi1[:, 0]
    if exploratory and n_dims > 1:
        x = np.where(np.isnan(values), np.nanmean(values, axis=0), values)
        corr = np.nan_to_num(np.corrcoef(x, rowvar=False))
        evals, evecs = np.linalg.eigh(corr)
        load = evecs[:, ::-1][:, :n_dims] * np.sqrt(np.maximum(evals[::-1][:n_dims], 0.0))
        load *= np.where(load[:, :1].sum() < 0, -1.0, 1.0)
        h2 = np.clip((load ** 2).sum(axis=1), 0.05, 0.85)
        phi[:, :n_dims] = np.clip(1.702 * load / np.sqrt(1 - h2)[:, None], -3, 3)
    else:
        n_load = np.maximum(pattern.sum(axis=1), 1)
        phi[:, :n_dims] = (a0 / np.sqrt(n_load))[:, None]
    phi[:, :n_dims] *= pattern
    for j in range(n_items):
        c = int(n_cat[j])
        phi[j, n_dims:n_dims + c - 1] = phi1[j, 1:c]
        if kinds[j] == LinearKind.LOGISTIC3:
            phi[j, extra_column(n_dims, phi.shape[1])] = phi1[j, 2]  # logit c
        if kinds[j] == LinearKind.NOMINAL:  # a GPCM-like start: α_k = k a
            phi[j, 0] = (c - 1) * a0[j]
            phi[j, n_dims + k_max - 1:n_dims + k_max - 1 + c - 2] = np.arange(1, c - 1) * a0[j]
    return phi, kinds


def free_mask(kinds, n_cat, pattern):
    """``(I, p)`` bool: the estimated entries (the pattern's slopes, the intercepts, nominal α_1..α_{C-2})."""
    n_items, n_dims = pattern.shape
    k_max = int(np.max(n_cat))
    free = np.zeros((n_items, n_internal(n_dims, k_max)), dtype=bool)
    free[:, :n_dims] = pattern
    for j in range(n_items):
        c = int(n_cat[j])
        free[j, n_dims:n_dims + c - 1] = True
        if kinds[j] == LinearKind.NOMINAL:
            free[j, n_dims + k_max - 1:n_dims + k_max - 1 + c - 2] = True
        if kinds[j] == LinearKind.LOGISTIC3:
            free[j, extra_column(n_dims, free.shape[1])] = True
    return free


def default_points(n_dims: int) -> int:
    return DEFAULT_POINTS.get(n_dims, max(3, int(math.floor(20000 ** (1.0 / n_dims)))))
