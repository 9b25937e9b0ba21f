"""Marginal maximum likelihood by EM (Bock-Aitkin) on a fixed quadrature grid, with SQUAREM acceleration.

E-step (DESIGN.md: matrix products of response indicators with grid tables). The log-likelihood of every
person at every node plus the log prior weight is one product ``Z @ T`` (N x Q), and the expected counts are
``Z.T @ posterior``. Two layouts of ``Z``:

* dense (complete or mostly answered data): one column per (item, category >= 1), one "answered" column per
  item when cells are missing, one indicator column per latent group; ``T`` holds the log-probability
  differences to category 0, the category-0 log-probabilities and the groups' log prior weights.
* sparse (most cells missing, large data): CSR with one column per (item, category), so each answered cell
  is one nonzero; ``T`` holds the log-probabilities themselves. Multiplied in row blocks on threads.

While the grid table moves a lot between E-steps (EM's first steps) ``Z @ T`` is taken in single precision;
once it moves little, the product is incremental: the last exact product is kept centered on each person's
largest value (float32, offsets in float64) and only ``Z @ (T - T_old)`` is added in single precision, so the
rounding error scales with the change, not with the log-likelihood
(:meth:`~adaptive.calibration.layout.IndicatorLayout._fast_table`). The posterior weights are float32 (they
feed only the count product); the sums that make the log-likelihood are float64.

M-step: every item's expected complete-data log-likelihood (plus log priors) is maximized for all items at
once by damped Newton / Fisher scoring with step halving, to a tolerance that follows EM's last change
(:meth:`EMSettings.mstep_tol`). 2PL items and 3PL/4PL items have kernels on
``(I, Q)`` arrays; graded, GPCM and common-slope items use the general ``(I, Q, K, p)`` derivatives
(:mod:`adaptive.calibration.kernels`). The latent
mean and variance (when free) are updated from the posterior moments. SQUAREM (Varadhan & Roland 2008,
scheme S3) extrapolates two EM steps and is guarded by the log-likelihood, so every accepted step keeps the
ascent property.

The parts: :class:`~adaptive.calibration.layout.IndicatorLayout` (the data as ``Z``, its products and thread
pool), :class:`~adaptive.calibration.params.ParameterVector` (pack, unpack, names), the kernels, and here
:class:`Problem` (E-step, M-step, latent update) and :func:`run_em` (the iteration, SQUAREM, convergence).

Convergence: the largest absolute change of any free parameter (internal
scale: slopes, intercepts, logit asymptotes, latent mean and log-SD) over a
plain EM step is below ``tol`` *and* that step raised the log-likelihood by
less than ``tol``-scaled noise (``loglik_tol``). Both traces are kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import numpy as np

from ..irt.mixed import internal_log_prob
from ..irt.registry import Family
from . import kernels
from .expansion import LatentExpansion
from .layout import IndicatorLayout
from .params import ParameterVector
from .priors import prior_terms

__all__ = ["Problem", "EMSettings", "EMState", "EStep", "run_em"]


class EMProblem(Protocol):
    """What :func:`run_em` iterates on: a parameter vector (``params.pack/unpack``, ``phi0``, ``latent0``,
    ``slope_entries``, ``intercept_entries``), the E-step and the EM map (:class:`Problem`, and
    :class:`~adaptive.calibration.multidim.LinearProblem`)."""

    params: Any

    def estep(self, x: np.ndarray, count_dtype=np.float64) -> EStep | None: ...

    def em_map(self, x: np.ndarray, stats: EStep, mstep_tol: float = 1e-9) -> np.ndarray: ...


@dataclass(frozen=True)
class EMSettings:
    """Convergence settings of :func:`run_em` (see the module docstring)."""

    tol: float = 1e-4
    loglik_tol: float = 1e-3
    max_iter: int = 2000
    accelerate: str = "squarem"
    #: a slope beyond ``slope_limit`` or an intercept beyond ``intercept_limit`` (logistic metric) means the data
    #: cannot pin the item down (a perfect split of a small sample, an item nearly everyone gets right): EM stops
    #: there instead of running to max_iter after a parameter that goes to infinity
    slope_limit: float = 50.0
    intercept_limit: float = 100.0

    def mstep_tol(self, change: float) -> float:
        """Newton tolerance of the M-step that follows an EM step whose largest change was ``change``: a
        hundredth of it, between a thousandth of ``tol`` and 1e-3. An M-step far more exact than the EM step it
        feeds buys nothing; near convergence it is exact to well below ``tol``."""
        return float(min(max(1e-2 * change, 1e-3 * self.tol), 1e-3))

    @property
    def count_dtype(self):
        """float32 expected counts unless a tolerance below 1e-5 asks for more digits than they carry."""
        return np.float32 if self.tol >= 1e-5 else np.float64


@dataclass(frozen=True)
class EStep:
    """What an E-step gives at a parameter vector.

    Attributes
    ----------
    loglik : marginal log-likelihood; objective : ``loglik`` plus the log prior of the item parameters
    counts : (I, Q, K) expected counts (a factored multidimensional E-step: one such array per group of items);
    group_mass : (G, Q) expected persons per group and node
    """

    loglik: float
    objective: float
    counts: np.ndarray | list
    group_mass: np.ndarray


@dataclass
class EMState:
    x: np.ndarray
    loglik: float
    objective: float
    n_iter: int
    n_estep: int
    converged: bool
    max_change: float
    where_change: int
    loglik_gain: float
    trace: list = field(default_factory=list)
    diverged: bool = False


class Problem:
    """One calibration: the data's indicator layout, the free-parameter vector and the latent structure, with
    the E- and M-steps.

    Parameters
    ----------
    values : (N, I) float, NaN = not administered, categories 0..K-1
    family, n_cat : (I,) item families (:class:`~adaptive.irt.registry.Family` codes) and category counts
    phi0 : (I, p) start (or fixed) internal parameters
    free : (I, p) bool -- parameters estimated item by item
    tied : (I,) bool -- items sharing one estimated common slope (1PL)
    theta : (Q,) quadrature points
    groups : (N,) int group index 0..G-1
    latent : (G, 2) start mean and SD; latent_free (G, 2) bool
    priors : dict name -> Prior
    layout : "auto" (default), "dense" or "sparse" -- see :class:`~adaptive.calibration.layout.IndicatorLayout`
    expand : expand the latent scale in every EM step where the problem allows it (PX-EM,
        :class:`~adaptive.calibration.expansion.LatentExpansion`); False gives textbook Bock-Aitkin steps

    Attributes
    ----------
    layout : IndicatorLayout -- the data (``values``, ``mask``, ``category``, groups) and its products
    params : ParameterVector -- which parameters are free, and how they pack into the vector EM iterates on
    """

    def __init__(self, values, family, n_cat, phi0, free, tied, theta, groups, latent, latent_free, priors,
                 dtype=np.float64, layout="auto", expand=True):
        self.family = np.asarray(family)
        self.n_cat = np.asarray(n_cat)
        self.theta = np.asarray(theta, dtype=float)
        self.priors = priors
        groups = np.asarray(groups, dtype=np.intp)
        n_groups = int(groups.max()) + 1 if groups.size else 1
        self.params = ParameterVector(family, phi0, free, tied, latent, latent_free)
        self.layout = IndicatorLayout(values, n_cat, groups, n_groups, self.theta.size, dtype, layout)
        self.n_items = self.layout.n_items
        self.expansion = LatentExpansion(self.params, self.family, self.n_cat, priors) if expand else None

    # ------------------------------------------------------------------ latent weights
    def log_weights(self, latent) -> np.ndarray:
        """Normalized log prior weights of the grid per group, ``(G, Q)`` (the normal density at the nodes)."""
        mu, sd = latent[:, 0:1], latent[:, 1:2]
        lw = -0.5 * ((self.theta[None, :] - mu) / sd) ** 2
        return lw - np.logaddexp.reduce(lw, axis=1, keepdims=True)

    # ------------------------------------------------------------------ E-step
    def posterior(self, logp, latent, fast=False):
        """Posterior weights ``(N, Q)`` and the marginal log-likelihood (see ``IndicatorLayout.posterior``)."""
        return self.layout.posterior(logp, self.log_weights(latent), fast)

    def counts(self, post, count_dtype=np.float64):
        """Expected counts ``(I, Q, K)`` and group masses ``(G, Q)`` from posterior weights."""
        return self.layout.counts(post, count_dtype)

    def estep(self, x, count_dtype=np.float64) -> EStep | None:
        """The E-step at the free vector ``x`` (None when the parameters give a non-finite likelihood)."""
        phi, latent = self.params.unpack(x)
        with np.errstate(invalid="ignore"):
            logp = internal_log_prob(self.family, self.n_cat, phi, self.theta)
        if not np.all(np.isfinite(logp)):
            return None
        post, ll = self.posterior(logp, latent, fast=count_dtype == np.float32)
        r, g_mass = self.counts(post, count_dtype)
        return EStep(ll, ll + self.log_prior(phi), r, g_mass)

    def log_prior(self, phi) -> float:
        if not self.priors:
            return 0.0
        return float(prior_terms(self.priors, self.family, self.n_cat, phi, self.params.prior_free)[0].sum())

    # ------------------------------------------------------------------ M-step objectives: kernels plus priors
    def _with_prior(self, f, phi, idx):
        if self.priors:
            f = f + prior_terms(self.priors, self.family[idx], self.n_cat[idx], phi, self.params.prior_free[idx])[0]
        return np.where(np.isfinite(f), f, -np.inf)

    def _prior_grad_curv(self, phi, idx, grad, curv):
        if not self.priors:
            return grad, curv
        _, pg, ph = prior_terms(self.priors, self.family[idx], self.n_cat[idx], phi, self.params.prior_free[idx])
        if isinstance(curv, tuple):
            return grad + pg, tuple(c - ph for c in curv)
        return grad + pg, curv - ph

    def _rows(self, idx):
        return np.arange(self.n_items) if idx is None else idx

    def _general_objective(self, phi, r, idx=None):
        idx = self._rows(idx)
        return self._with_prior(kernels.general_objective(phi, r, self.theta, self.family[idx], self.n_cat[idx]),
                                phi, idx)

    def _general_grad_curv(self, phi, r, exact=False, idx=None):
        idx = self._rows(idx)
        grad, curv = kernels.general_grad_curv(phi, r, self.theta, self.family[idx], self.n_cat[idx], exact)
        return self._prior_grad_curv(phi, idx, grad, curv)

    def _plain_objective(self, phi, r, idx):
        return self._with_prior(kernels.plain_objective(phi, r, self.theta), phi, idx)

    def _plain_grad_curv(self, phi, r, exact=False, idx=None):
        grad, curv = kernels.plain_grad_curv(phi, r, self.theta)
        return self._prior_grad_curv(phi, self._rows(idx), grad, curv)

    def _asymptote_objective(self, phi, r, idx):
        return self._with_prior(kernels.asymptote_objective(phi, r, self.theta), phi, idx)

    def _asymptote_grad_curv(self, phi, r, exact=True, idx=None):
        grad, curv = kernels.asymptote_grad_curv(phi, r, self.theta)
        return self._prior_grad_curv(phi, self._rows(idx), grad, curv)

    # ------------------------------------------------------------------ M-step
    def mstep_items(self, phi, r, max_newton=30, tol=1e-9):
        """Maximize every item's expected complete-data log-likelihood plus log prior.

        Newton (3PL/4PL, where the negative Hessian is positive definite) or Fisher scoring, with a trust
        region and step halving, on the items that have not converged yet. Two-parameter logistic items
        (no asymptotes, no common slope) go through a kernel on ``(I, Q)`` arrays: their Fisher scoring is
        Newton's method on a weighted logistic regression.
        """
        free, has_tie = self.params.free, self.params.has_tie
        if not free.any() and not has_tie:
            return phi
        phi = phi.copy()
        plain = self._plain_rows
        if plain.any():
            self._newton(phi, r, plain & free.any(axis=1), self._plain_objective, self._plain_grad_curv, False,
                         max_newton, tol, tie=False, canonical=True)
        asym = self._asymptote_rows
        if asym.any():
            self._newton(phi, r, asym & free.any(axis=1), self._asymptote_objective, self._asymptote_grad_curv,
                         True, max_newton, tol, tie=False)
        rest = ~(plain | asym)
        if rest.any() and (free[rest].any() or has_tie):
            self._newton(phi, r, rest & free.any(axis=1), self._general_objective, self._general_grad_curv,
                         self._use_newton, max_newton, tol, tie=has_tie)
        return phi

    def _newton(self, phi, r, active, objective, grad_curv, exact, max_newton, tol, tie, canonical=False):
        """Damped Newton / Fisher scoring in place on the rows of ``phi`` marked ``active`` (see mstep_items).

        ``canonical``: Fisher scoring is Newton's method here (the logistic curve without asymptotes, a canonical
        link), so its steps converge quadratically like the exact Newton steps of ``exact``."""
        free = self.params.free
        subset = active.copy()
        # asymptotes (logit scale) move at most one unit per EM cycle: an early, poor posterior must not push
        # c to 0 (logit -> -inf), where its gradient vanishes and later cycles could never bring it back
        lo, hi = phi - self._cycle_cap, phi + self._cycle_cap
        f = np.full(self.n_items, -np.inf)
        rows0 = np.flatnonzero(subset | (self.params.tied if tie else False))
        f[rows0] = objective(phi[rows0], r[rows0], rows0)
        eye = np.eye(phi.shape[1])
        pair = free[active] if active.any() else free[:0]
        # every active row estimating the same two parameters (2PL rows): a closed-form 2x2 solve, ~4x cheaper
        pair_cols = np.flatnonzero(pair[0]) if pair.shape[0] and (pair == pair[0]).all() else np.empty(0, int)
        tie_move = 0.0
        max_step = self._max_step
        for _ in range(max_newton):
            idx = np.flatnonzero(active)
            if idx.size:
                ph, rr = phi[idx], r[idx]
                grad, curv = grad_curv(ph, rr, exact=exact, idx=idx)
                # parameters at their per-cycle bound and pushed outward stay put this iteration
                fr = free[idx] & ~((ph <= lo[idx]) & (grad < 0)) & ~((ph >= hi[idx]) & (grad > 0))
                fm = fr[:, :, None] & fr[:, None, :]
                if exact:
                    fisher, neg_h = curv
                    mat = np.where(fm, neg_h, eye[None])
                    bad = np.linalg.eigvalsh(mat)[:, 0] <= 1e-10 * np.abs(mat).max(axis=(1, 2))
                    mat[bad] = np.where(fm, fisher, eye[None])[bad]
                    quadratic = ~bad
                else:
                    mat = np.where(fm, curv, eye[None])
                    quadratic = np.full(idx.size, canonical)
                grad = np.where(fr, grad, 0.0)
                diag = np.maximum(np.abs(np.diagonal(mat, axis1=1, axis2=2)), 1e-12)
                mat = mat + 1e-10 * diag[:, :, None] * eye[None]
                step = kernels.solve_pair(mat, grad, pair_cols, fr) if pair_cols.size == 2 else None
                if step is None:
                    try:
                        step = np.linalg.solve(mat, grad[:, :, None])[:, :, 0]
                    except np.linalg.LinAlgError:
                        step = grad / diag
                step = np.where(fr, step, 0.0)
                step /= np.maximum(1.0, (np.abs(step) / max_step[idx]).max(axis=1, keepdims=True))
                taken = np.zeros(idx.size)
                full = np.zeros(idx.size, dtype=bool)
                pend = np.arange(idx.size)
                mult = 1.0
                for _half in range(30):
                    rows = idx[pend]
                    trial = np.clip(ph[pend] + mult * step[pend], lo[rows], hi[rows])
                    f_new = objective(trial, r[rows], rows)
                    ok = f_new >= f[rows] - 1e-12 * np.abs(f[rows])
                    acc = pend[ok]
                    phi[idx[acc]] = trial[ok]
                    taken[acc] = np.abs(mult * step[acc]).max(axis=1)
                    full[acc] = mult == 1.0
                    f[idx[acc]] = f_new[ok]
                    pend = pend[~ok]
                    if pend.size == 0:
                        break
                    mult /= 2
                # a full Newton step (exact Hessian) shorter than sqrt(tol) leaves an error of order its square:
                # the item is done without another iteration to confirm it
                done = (taken < tol) | (quadratic & full & (taken < math.sqrt(tol)))
                active[idx[done]] = False
            if tie:
                phi[:], f, tie_move = self._tied_slope_step(phi, r, f)
                if tie_move >= tol:
                    active |= subset
            if not active.any() and (not tie or tie_move < tol):
                break

    @cached_property
    def _plain_rows(self) -> np.ndarray:
        """Items whose only free parameters are a slope and an intercept of a logistic curve without asymptotes."""
        pv = self.params
        plain = (self.family == Family.DICHOTOMOUS) & ~pv.tied
        if pv.phi0.shape[1] >= 4:
            plain &= ~pv.free[:, 2:4].any(axis=1)
            plain &= (pv.phi0[:, 2] == -np.inf) & (pv.phi0[:, 3] == np.inf)
        return plain

    @cached_property
    def _asymptote_rows(self) -> np.ndarray:
        """Dichotomous items with a lower or upper asymptote (3PL/4PL), not sharing a common slope."""
        return (self.family == Family.DICHOTOMOUS) & ~self.params.tied & ~self._plain_rows

    @cached_property
    def _cycle_cap(self):
        cap: np.ndarray = np.full(self.params.phi0.shape, np.inf)
        if cap.shape[1] >= 4:
            cap[self.family == Family.DICHOTOMOUS, 2:4] = 1.0
        return cap

    @cached_property
    def _max_step(self):
        cap: np.ndarray = np.full(self.params.phi0.shape, 2.0)
        if cap.shape[1] >= 4:
            cap[self.family == Family.DICHOTOMOUS, 2:4] = 1.0
        return cap

    @cached_property
    def _use_newton(self) -> bool:
        """Newton pays where an item estimates an asymptote (3PL/4PL); 2PL's Fisher scoring is Newton already."""
        free = self.params.free
        if free.shape[1] < 4:
            return False
        return bool((free[:, 2:4] & (self.family == Family.DICHOTOMOUS)[:, None]).any())

    def _tied_slope_step(self, phi, r, f_old):
        """One damped Newton step of the common slope of tied (1PL) items; returns (phi, objectives, |step|)."""
        tied = self.params.tied
        grad, fisher = self._general_grad_curv(phi, r)
        g = grad[tied, 0].sum()
        h = fisher[tied, 0, 0].sum()
        step = float(np.clip(g / max(h, 1e-12), -1.0, 1.0))
        total_old = f_old[tied].sum()
        for _ in range(25):
            trial = phi.copy()
            trial[tied, 0] += step
            f_new = self._general_objective(trial, r)
            if f_new[tied].sum() >= total_old - 1e-12 * abs(total_old):
                return trial, np.where(tied, f_new, f_old), abs(step)
            step /= 2
        return phi, f_old, 0.0

    def mstep_latent(self, latent, g_mass):
        """Posterior-moment update of the free latent means and SDs."""
        if not self.params.latent_free.any():
            return latent
        latent = latent.copy()
        mass = g_mass.sum(axis=1)
        m1 = g_mass @ self.theta / mass
        for g in range(self.layout.n_groups):
            mu = m1[g] if self.params.latent_free[g, 0] else latent[g, 0]
            if self.params.latent_free[g, 0]:
                latent[g, 0] = mu
            if self.params.latent_free[g, 1]:
                var = float(g_mass[g] @ (self.theta - mu) ** 2 / mass[g])
                latent[g, 1] = math.sqrt(max(var, 1e-6))
        return latent

    def em_map(self, x, stats: EStep, mstep_tol=1e-9):
        """One EM step from the E-step statistics at ``x`` (``mstep_tol``: the item Newton steps' tolerance)."""
        phi, latent = self.params.unpack(x)
        phi = self.mstep_items(phi, stats.counts, tol=mstep_tol)
        latent = self.mstep_latent(latent, stats.group_mass)
        if self.expansion is not None:
            phi, latent = self.expansion.apply(phi, latent, stats.group_mass, self.theta)
        return self.params.pack(phi, latent)


def run_em(problem: EMProblem, settings: EMSettings, progress=None) -> EMState:
    """Iterate EM (SQUAREM-accelerated unless ``settings.accelerate == "none"``) to convergence.

    ``progress(n_iter, loglik, max_change)`` is called after each accepted step.
    """
    count_dtype = settings.count_dtype
    x = problem.params.pack(problem.params.phi0, problem.params.latent0)
    stats = problem.estep(x, count_dtype)
    if stats is None:
        raise FloatingPointError("the start values give a non-finite likelihood")
    n_estep, n_iter = 1, 0
    trace = [stats.loglik]
    converged = False
    change, where, gain = math.inf, -1, math.inf

    def plain(x_cur, st):
        nonlocal n_iter, n_estep, change, where, gain
        x_new = problem.em_map(x_cur, st, settings.mstep_tol(change))
        n_iter += 1
        st_new = problem.estep(x_new, count_dtype)
        if st_new is None:
            raise FloatingPointError("an EM step reached parameters with a non-finite likelihood")
        n_estep += 1
        diff = np.abs(x_new - x_cur)
        where = int(np.argmax(diff)) if diff.size else -1
        change = float(diff.max()) if diff.size else 0.0
        gain = st_new.objective - st.objective
        trace.append(st_new.loglik)
        return x_new, st_new

    def done():
        return change < settings.tol and abs(gain) < settings.loglik_tol

    watched = np.concatenate([problem.params.slope_entries, problem.params.intercept_entries]).astype(np.int64)
    limits = np.concatenate([np.full(problem.params.slope_entries.size, settings.slope_limit),
                             np.full(problem.params.intercept_entries.size, settings.intercept_limit)])
    diverged = False

    def runaway() -> bool:
        nonlocal where, diverged
        over = np.abs(x[watched]) / limits
        if over.size and over.max() > 1.0:
            where = int(watched[np.argmax(over)])
            diverged = True
        return diverged

    while n_iter < settings.max_iter and not runaway():
        x1, st1 = plain(x, stats)
        if done() or settings.accelerate == "none":
            x, stats = x1, st1
            if progress:
                progress(n_iter, stats.loglik, change)
            if done():
                converged = True
                break
            continue
        x2, st2 = plain(x1, st1)
        if done():
            x, stats = x2, st2
            converged = True
            break
        r = x1 - x
        v = (x2 - x1) - r
        nr, nv = np.linalg.norm(r), np.linalg.norm(v)
        alpha = -nr / nv if nv > 0 else -1.0
        alpha = min(alpha, -1.0)
        accepted = None
        while alpha < -1.0:
            x_try = x - 2 * alpha * r + alpha ** 2 * v
            st_try = problem.estep(x_try, count_dtype)
            n_estep += 1
            if (st_try is not None and np.isfinite(st_try.objective)
                    and st_try.objective >= st2.objective - 1e-9 * abs(st2.objective)):
                accepted = (x_try, st_try)
                break
            alpha = (alpha - 1.0) / 2.0
            if alpha > -1.05:
                break
        x, stats = accepted if accepted is not None else (x2, st2)
        trace.append(stats.loglik)
        if progress:
            progress(n_iter, stats.loglik, change)
    return EMState(x=x, loglik=stats.loglik, objective=stats.objective, n_iter=n_iter, n_estep=n_estep,
                   converged=converged and not diverged, max_change=change, where_change=where, loglik_gain=gain,
                   trace=trace, diverged=diverged)
