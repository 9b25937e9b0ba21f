"""Marginal maximum likelihood by EM (Bock-Aitkin) on a fixed quadrature grid, with SQUAREM acceleration.

E-step (DESIGN.md: matrix products of response indicators with grid tables). The log-likelihood of every
person at every node plus the log prior weight is one product ``Z @ T`` (N x Q), and the expected counts are
``Z.T @ posterior``. Two layouts of ``Z``:

* dense (complete or mostly answered data): one column per (item, category >= 1), one "answered" column per
  item when cells are missing, one indicator column per latent group; ``T`` holds the log-probability
  differences to category 0, the category-0 log-probabilities and the groups' log prior weights.
* sparse (most cells missing, large data): CSR with one column per (item, category), so each answered cell
  is one nonzero; ``T`` holds the log-probabilities themselves. Multiplied in row blocks on threads.

Once the grid table moves little between E-steps, ``Z @ T`` is computed incrementally: the last exact
product is kept in double precision and only ``Z @ (T - T_old)`` is taken in single precision, so the
rounding error scales with the change, not with the log-likelihood. The posterior weights are float32 (they
feed only the count product); all sums that make the log-likelihood are float64.

M-step: every item's expected complete-data log-likelihood (plus log priors) is maximized for all items at
once by damped Newton / Fisher scoring with step halving. 2PL items and 3PL/4PL items have kernels on
``(I, Q)`` arrays; graded, GPCM and common-slope items use the general ``(I, Q, K, p)`` derivatives. The latent
mean and variance (when free) are updated from the posterior moments. SQUAREM (Varadhan & Roland 2008,
scheme S3) extrapolates two EM steps and is guarded by the log-likelihood, so every accepted step keeps the
ascent property.

Convergence: the largest absolute change of any free parameter (internal
scale: slopes, intercepts, logit asymptotes, latent mean and log-SD) over a
plain EM step is below ``tol`` *and* that step raised the log-likelihood by
less than ``tol``-scaled noise (``loglik_tol``). Both traces are kept.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, log_expit

from .models import DICH, dich_parts, dich_weighted_hessian, dich_z, log_prob, log_prob_and_grad
from .priors import prior_terms

__all__ = ["Problem", "EMSettings", "EMState", "run_em"]


_POOL = (None, None)  # (process id, executor): a forked child makes its own (the parent's threads are not in it)
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL[0] != os.getpid():
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
            _POOL = (os.getpid(), ThreadPoolExecutor(max_workers=max(1, min(cores, 8)),
                                                     thread_name_prefix="adaptive-estep"))
        return _POOL[1]


def _row_blocks(n_rows, size):
    """Row slices for threaded work on an ``(n_rows, ...)`` array of ``size`` entries: one block when small,
    else up to 8. They depend only on the shape (not on the machine), so results are identical whatever the
    number of cores."""
    n_blocks = 1 if size < 150_000 else int(min(max(n_rows // 2048, 1), 8))
    edges = np.linspace(0, n_rows, n_blocks + 1).astype(int)
    return [slice(lo, hi) for lo, hi in zip(edges[:-1], edges[1:], strict=True)]


def _run_blocks(fn, blocks):
    """``[fn(b) for b in blocks]``, on a thread pool when there are several (numpy's element-wise functions and
    scipy's sparse products release the GIL)."""
    if len(blocks) == 1:
        return [fn(blocks[0])]
    pool = _pool()
    futures = [pool.submit(fn, b) for b in blocks]
    return [f.result() for f in futures]


@dataclass
class EMSettings:
    tol: float = 1e-4
    loglik_tol: float = 1e-3
    max_iter: int = 2000
    accelerate: str = "squarem"


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


class Problem:
    """Data, item layout and latent structure of one calibration, with its E- and M-steps.

    Parameters
    ----------
    values : (N, I) float, NaN = not administered, categories 0..K-1
    family, n_cat : (I,) item families (models.DICH/GRADED/GPCM) and category counts
    phi0 : (I, p) start (or fixed) internal parameters
    free : (I, p) bool -- parameters estimated item by item
    tied : (I,) bool -- items sharing one estimated common slope (1PL)
    theta : (Q,) quadrature points
    groups : (N,) int group index 0..G-1
    latent : (G, 2) start mean and SD; latent_free (G, 2) bool
    priors : dict name -> Prior
    layout : "auto" (default), "dense" or "sparse" -- the indicator matrix of the E-step products. "auto" takes
        the sparse one (one nonzero per answered cell) when most cells are missing and the data are large.
    """

    def __init__(self, values, family, n_cat, phi0, free, tied, theta, groups, latent, latent_free, priors,
                 dtype=np.float64, layout="auto"):
        self.family = np.asarray(family)
        self.n_cat = np.asarray(n_cat)
        self.phi0 = np.array(phi0, dtype=float)
        self.free = np.asarray(free, dtype=bool)
        self.tied = np.asarray(tied, dtype=bool)
        self.theta = np.asarray(theta, dtype=float)
        self.groups = np.asarray(groups, dtype=np.intp)
        self.n_groups = int(self.groups.max()) + 1 if self.groups.size else 1
        self.latent0 = np.array(latent, dtype=float)
        self.latent_free = np.asarray(latent_free, dtype=bool)
        self.priors = priors
        self.dtype = dtype
        values = np.asarray(values, dtype=float)
        n, n_items = values.shape
        self.n_persons, self.n_items = n, n_items
        self.values = values
        mask = ~np.isnan(values)
        self.complete = bool(mask.all())
        self.mask = mask
        self.k_max = int(self.n_cat.max())
        # indicator columns for every (item, category >= 1)
        cols_item, cols_cat = [], []
        for k in range(1, self.k_max):
            items_k = np.flatnonzero(self.n_cat > k)
            cols_item.append(items_k)
            cols_cat.append(np.full(items_k.size, k))
        self.col_item = np.concatenate(cols_item)
        self.col_cat = np.concatenate(cols_cat)
        self.n_ycols = self.col_item.size
        self.n_maskcols = 0 if self.complete else n_items
        self.group_sizes = np.bincount(self.groups, minlength=self.n_groups).astype(float)
        n_obs = int(np.count_nonzero(mask))
        dense_width = self.n_ycols + self.n_maskcols + self.n_groups
        # sparse products cost ~4x more per nonzero than dense BLAS per entry (measured on 2 cores, both threaded)
        if layout not in ("auto", "dense", "sparse"):
            raise ValueError(f"layout={layout!r}: choose 'auto', 'dense' or 'sparse'")
        cheaper = 4 * (n_obs + n) < n * dense_width and n * dense_width > 250_000
        self.sparse = dtype == np.float64 and (layout == "sparse" or (layout == "auto" and cheaper))
        if self.sparse:
            self._build_sparse(values, mask)
        else:
            self._build_dense(values, mask, cols_item, dtype)
        # parameter vector layout
        self.free_idx = np.flatnonzero(self.free.ravel())
        self.n_item_free = self.free_idx.size
        self.has_tie = bool(self.tied.any())
        self.n_latent_free = int(self.latent_free.sum())
        self.n_free = self.n_item_free + int(self.has_tie) + self.n_latent_free

    def _build_dense(self, values, mask, cols_item, dtype):
        """Dense ``Z``: one column per (item, category >= 1), one "answered" column per item when data are missing
        and one indicator column per latent group, written straight into the product's dtype (NaN equals no
        category, so missing cells are 0). The group columns make the product add each person's log prior
        weights and the count product give the group masses."""
        n, n_items = values.shape
        z = np.zeros((n, self.n_ycols + self.n_maskcols + self.n_groups), dtype=dtype)
        pos = 0
        for k, items_k in enumerate(cols_item, start=1):
            block = values if items_k.size == n_items else values[:, items_k]
            np.equal(block, float(k), out=z[:, pos:pos + items_k.size], casting="unsafe")
            pos += items_k.size
        if self.n_maskcols:
            np.copyto(z[:, self.n_ycols:self.n_ycols + self.n_maskcols], mask, casting="unsafe")
        z[np.arange(n), self.n_ycols + self.n_maskcols + self.groups] = 1.0
        self.z = z

    def _build_sparse(self, values, mask):
        """Sparse ``Z`` (CSR) for data with many missing cells: one column per (item, category), so every
        answered cell is one nonzero, plus one indicator column per latent group; split in row blocks that
        threads multiply in parallel (scipy's sparse products release the GIL)."""
        n, n_items = values.shape
        per_row = mask.sum(axis=1)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(per_row + 1, out=indptr[1:])
        flat = np.flatnonzero(mask)  # answered cells in row-major order
        indices = np.empty(indptr[-1], dtype=np.int32)
        at_group = indptr[1:] - 1
        obs = np.ones(indptr[-1], dtype=bool)
        obs[at_group] = False
        indices[obs] = (flat % n_items) * self.k_max + values.ravel()[flat].astype(np.int64)
        indices[at_group] = n_items * self.k_max + self.groups
        width = n_items * self.k_max + self.n_groups
        ones64, ones32 = np.ones(indptr[-1]), np.ones(indptr[-1], dtype=np.float32)
        self.z = sp.csr_matrix((ones64, indices, indptr), shape=(n, width))
        self._blocks = []
        for rows_b in _row_blocks(n, n * self.theta.size):  # row blocks as views of the same index arrays
            lo, hi = indptr[rows_b.start], indptr[rows_b.stop]
            ptr = indptr[rows_b.start:rows_b.stop + 1] - lo
            shape = (rows_b.stop - rows_b.start, width)
            self._blocks.append((rows_b, sp.csr_matrix((ones64[lo:hi], indices[lo:hi], ptr), shape=shape),
                                 sp.csr_matrix((ones32[lo:hi], indices[lo:hi], ptr), shape=shape)))

    def _product(self, table, single):
        """``Z @ table`` in double precision, or in single precision with ``single``: dense layout ``(Q, N)``
        (node-major, so the posterior's reductions over nodes run across contiguous rows), sparse layout
        ``(N, Q)`` (scipy's natural orientation; its row blocks are filled on threads)."""
        if not self.sparse:
            if single:
                return table.astype(np.float32).T @ self._z_counts
            return np.asarray(table.astype(self.dtype, copy=False).T @ self.z.T, dtype=np.float64)
        table = table.astype(np.float32 if single else np.float64)
        out = np.empty((self.n_persons, table.shape[1]), dtype=table.dtype)

        def block(b):
            rows, z64, z32 = b
            out[rows] = (z32 if single else z64) @ table

        _run_blocks(block, self._blocks)
        return out

    def _count_product(self, post):
        """``Z.T @ post`` ``(columns, Q)`` in ``count_dtype``."""
        post = post.astype(self.count_dtype, copy=False)
        if not self.sparse:
            return np.asarray(self._z_counts @ post, dtype=np.float64)
        single = self.count_dtype == np.float32
        parts = _run_blocks(lambda b: (b[2] if single else b[1]).T @ post[b[0]], self._blocks)
        return np.sum(parts, axis=0, dtype=np.float64)

    @property
    def category(self) -> np.ndarray:
        """``(N, I)`` int categories, 0 where not administered (see ``mask``)."""
        if "_category" not in self.__dict__:
            self.__dict__["_category"] = np.where(self.mask, self.values, 0).astype(np.int64)
        return self.__dict__["_category"]

    # ------------------------------------------------------------------ parameter vector
    def pack(self, phi, latent) -> np.ndarray:
        parts = [phi.ravel()[self.free_idx]]
        if self.has_tie:
            parts.append(phi[self.tied, 0][:1])
        lat = np.column_stack([latent[:, 0], np.log(latent[:, 1])])
        parts.append(lat[self.latent_free])
        return np.concatenate(parts)

    def unpack(self, x):
        phi = self.phi0.copy()
        flat = phi.ravel()
        flat[self.free_idx] = x[: self.n_item_free]
        phi = flat.reshape(self.phi0.shape)
        pos = self.n_item_free
        if self.has_tie:
            phi[self.tied, 0] = x[pos]
            pos += 1
        lat = np.column_stack([self.latent0[:, 0], np.log(self.latent0[:, 1])])
        lat[self.latent_free] = x[pos:]
        return phi, np.column_stack([lat[:, 0], np.exp(lat[:, 1])])

    def names(self, ids) -> list[str]:
        """A readable name for every entry of the free vector."""
        out = []
        labels = {DICH: ["a", "intercept", "logit(c)", "logit(d)"]}
        for flat in self.free_idx:
            i, j = divmod(int(flat), self.phi0.shape[1])
            fam = int(self.family[i])
            lab = labels[DICH][j] if fam == DICH else ("a" if j == 0 else f"d{j}")
            out.append(f"{ids[i]} {lab}")
        if self.has_tie:
            out.append("common slope a")
        for g in range(self.n_groups):
            if self.latent_free[g, 0]:
                out.append(f"group {g} mean")
            if self.latent_free[g, 1]:
                out.append(f"group {g} log SD")
        return out

    # ------------------------------------------------------------------ latent weights
    def log_weights(self, latent) -> np.ndarray:
        """Normalized log prior weights of the grid per group, ``(G, Q)`` (the normal density at the nodes)."""
        mu, sd = latent[:, 0:1], latent[:, 1:2]
        lw = -0.5 * ((self.theta[None, :] - mu) / sd) ** 2
        return lw - np.logaddexp.reduce(lw, axis=1, keepdims=True)

    # ------------------------------------------------------------------ E-step
    #: largest change of a grid-table entry that an incremental single-precision E-step product may carry
    #: (its log-likelihood error is then below ~1e-4; measured ~1e-6 for the changes of late EM cycles)
    incremental_limit = 0.5
    #: below this many indicator columns the exact product is cheap enough
    incremental_min_columns = 64

    def grid_table(self, logp, log_weights):
        """The table ``T`` (one row per column of ``Z``, one column per node) of :meth:`loglik_table`."""
        if self.sparse:
            return np.concatenate([logp.transpose(0, 2, 1).reshape(-1, logp.shape[1]), log_weights], axis=0)
        t_y = logp[self.col_item, :, self.col_cat] - logp[self.col_item, :, 0]
        const = log_weights + logp[:, :, 0].sum(axis=0) if self.complete else log_weights
        parts = [t_y, const] if self.complete else [t_y, logp[:, :, 0], const]
        return np.concatenate(parts, axis=0)

    def loglik_table(self, logp, log_weights, fast=False):
        """Log-likelihood plus log prior weight of every person at every node (a new array): ``(Q, N)`` with the
        dense layout, ``(N, Q)`` with the sparse one (see :meth:`_product`).

        One product ``Z @ T``: ``T`` stacks the log-probability differences of the observed categories, the
        category-0 log-probabilities (missing data) and, for each group's indicator column, the group's log
        prior weights (plus, with complete data, the sum of the category-0 log-probabilities).

        With ``fast`` the product is incremental: ``Z @ T`` is kept in double precision from the last exact
        product, and a table that moved by at most ``incremental_limit`` is evaluated as
        ``Z @ T_old + Z @ (T - T_old)`` with the small difference product in single precision, which halves the
        cost of the largest product while its rounding error scales with the change, not with the
        log-likelihood itself.
        """
        table = self.grid_table(logp, log_weights)
        incremental = fast and self.dtype == np.float64 and table.shape[0] >= self.incremental_min_columns
        prev = self.__dict__.get("_last_product") if incremental else None
        if prev is not None:
            delta = table - prev[0]
            if np.abs(delta).max() <= self.incremental_limit:
                return np.add(prev[1], self._product(delta, single=True), dtype=np.float64)
        full = self._product(table, single=False)
        if incremental:
            self.__dict__["_last_product"] = (table, full)
            return full.copy()
        return full

    def posterior(self, logp, latent, fast=False):
        """Posterior weights ``(N, Q)`` and the marginal log-likelihood.

        With ``fast`` the weights are exponentiated and kept in float32 (they feed only the float32 count
        product); the per-person sums that make the log-likelihood are accumulated in float64.
        """
        a = self.loglik_table(logp, self.log_weights(latent), fast)
        out = np.empty(a.shape, np.float32) if fast else a
        a_qn, out_qn = (a.T, out.T) if self.sparse else (a, out)  # (Q, N) views

        def normalize(persons):
            block = a_qn[:, persons]
            m = block.max(axis=0)
            e = np.subtract(block, m, out=out_qn[:, persons], casting="same_kind")
            # weights below e^-80 (single) / e^-700 (double) of a person's largest are kept at that floor: they
            # change no sum, and subnormal numbers would slow every later product several-fold
            np.maximum(e, -80.0 if e.dtype == np.float32 else -700.0, out=e)
            np.exp(e, out=e)
            s = e.sum(axis=0, dtype=np.float64)
            e /= s.astype(e.dtype)
            return float(m.sum() + np.log(s).sum())

        # threads only with the sparse layout: after a dense BLAS product, OpenBLAS's own threads keep spinning for
        # a while and take the cores that the normalization's threads would need (measured: slower, not faster)
        n = self.n_persons
        blocks = _row_blocks(n, a.size) if self.sparse else [slice(0, n)]
        ll = math.fsum(_run_blocks(normalize, blocks))
        out = out_qn.T  # (N, Q)
        return out, ll

    @property
    def _z_counts(self):
        """The dense indicator matrix transposed, in single precision for the count product (counts feed the
        M-step only; their float32 rounding, ~1e-7 relative, moves no estimate visibly, while the log-likelihood
        stays in float64)."""
        if self.count_dtype == np.float64:
            return self.z.T
        if "_z32" not in self.__dict__:
            self.__dict__["_z32"] = self.z.T.astype(np.float32)
        return self.__dict__["_z32"]

    #: float32 counts unless a tolerance below 1e-5 asks for more digits than they carry
    count_dtype = np.float32

    def counts(self, post):
        """Expected counts ``R (I, Q, K)`` and per-group node masses ``(G, Q)``."""
        u = self._count_product(post)
        n_q = self.theta.size
        if self.sparse:
            cells = self.n_items * self.k_max
            r = u[:cells].reshape(self.n_items, self.k_max, n_q).transpose(0, 2, 1).copy()
            return r, u[cells:]
        r = np.zeros((self.n_items, n_q, self.k_max))
        r[self.col_item, :, self.col_cat] = u[: self.n_ycols]
        g_mass = u[self.n_ycols + self.n_maskcols:]
        if self.complete:
            n_i = np.broadcast_to(g_mass.sum(axis=0), (self.n_items, n_q))
        else:
            n_i = u[self.n_ycols:self.n_ycols + self.n_maskcols]
        r[:, :, 0] = n_i - r[:, :, 1:].sum(axis=2)
        np.maximum(r, 0.0, out=r)
        return r, g_mass

    def estep(self, x):
        phi, latent = self.unpack(x)
        with np.errstate(invalid="ignore"):
            logp = log_prob(self.family, self.n_cat, phi, self.theta)
        if not np.all(np.isfinite(logp)):
            return None
        post, ll = self.posterior(logp, latent, fast=self.count_dtype == np.float32)
        r, g_mass = self.counts(post)
        lp = self.log_prior(phi)
        return ll, ll + lp, r, g_mass

    def log_prior(self, phi) -> float:
        if not self.priors:
            return 0.0
        lp = prior_terms(self.priors, self.family, self.n_cat, phi, self.free | self.tied[:, None] & (np.arange(
            phi.shape[1]) == 0)[None, :])[0]
        return float(lp.sum())

    # ------------------------------------------------------------------ M-step
    def _item_objective(self, phi, r, idx=None):
        """Each item's expected complete-data log-likelihood plus log prior (rows ``idx`` of the bank)."""
        idx = np.arange(self.n_items) if idx is None else idx
        with np.errstate(invalid="ignore"):
            logp = log_prob(self.family[idx], self.n_cat[idx], phi, self.theta)
        f = np.einsum("iqk,iqk->i", r, logp)
        if self.priors:
            f = f + prior_terms(self.priors, self.family[idx], self.n_cat[idx], phi, self._prior_free[idx])[0]
        return np.where(np.isfinite(f), f, -np.inf)

    @property
    def _prior_free(self):
        return self.free | (self.tied[:, None] & (np.arange(self.phi0.shape[1]) == 0)[None, :])

    def item_grad_fisher(self, phi, r, exact=False, idx=None):
        """Gradient ``(I, p)`` and curvature ``(I, p, p)`` of each item's M-step objective (rows ``idx``).

        The curvature is the Fisher information; with ``exact`` the negative Hessian replaces it for
        dichotomous items (Newton's method: quadratic convergence for 3PL/4PL, where Fisher scoring
        crawls along the flat direction of ``c``). GPCM's Fisher information is its exact Hessian.
        """
        idx = np.arange(self.n_items) if idx is None else idx
        family = self.family[idx]
        logp, g = log_prob_and_grad(family, self.n_cat[idx], phi, self.theta)
        n_i, n_q, k, p = g.shape
        g2 = g.reshape(n_i, n_q * k, p)
        grad = (r.reshape(n_i, 1, n_q * k) @ g2)[:, 0, :]
        prob = np.exp(logp) * (logp > -999.0)
        w = np.sqrt(r.sum(axis=2)[:, :, None] * prob).reshape(n_i, n_q * k, 1)  # Fisher weights n_q P_k
        wg = w * g2
        fisher = wg.transpose(0, 2, 1) @ wg
        neg_h = None
        if exact:
            dich = np.flatnonzero(family == DICH)
            neg_h = fisher.copy()
            if dich.size:
                rg = np.sqrt(r[dich]).reshape(dich.size, n_q * k, 1) * g2[dich]
                outer = rg.transpose(0, 2, 1) @ rg  # sum_qk R_k G_k G_k^T
                coef = r[dich, :, 1] / prob[dich, :, 1] - r[dich, :, 0] / prob[dich, :, 0]
                second = dich_weighted_hessian(dich_parts(phi[dich], self.theta), self.theta, coef)
                neg_h[dich, :4, :4] = outer[:, :4, :4] - second
        if self.priors:
            _, pg, ph = prior_terms(self.priors, family, self.n_cat[idx], phi, self._prior_free[idx])
            grad += pg
            fisher -= ph
            if neg_h is not None:
                neg_h -= ph
        return grad, (fisher if neg_h is None else (fisher, neg_h))

    def mstep_items(self, phi, r, max_newton=30, tol=1e-9):
        """Maximize every item's expected complete-data log-likelihood plus log prior.

        Newton (3PL/4PL, where the negative Hessian is positive definite) or Fisher scoring, with a trust
        region and step halving, on the items that have not converged yet. Two-parameter logistic items
        (no asymptotes, no common slope) go through a kernel on ``(I, Q)`` arrays: their Fisher scoring is
        Newton's method on a weighted logistic regression.
        """
        free = self.free
        if not free.any() and not self.has_tie:
            return phi
        phi = phi.copy()
        plain = self._plain_rows
        if plain.any():
            self._newton(phi, r, plain & free.any(axis=1), self._plain_objective, self._plain_grad_fisher, False,
                         max_newton, tol, tie=False)
        asym = self._asymptote_rows
        if asym.any():
            self._newton(phi, r, asym & free.any(axis=1), self._asym_objective, self._asym_grad_curv, True,
                         max_newton, tol, tie=False)
        rest = ~(plain | asym)
        if rest.any() and (free[rest].any() or self.has_tie):
            self._newton(phi, r, rest & free.any(axis=1), self._item_objective, self.item_grad_fisher,
                         self._use_newton, max_newton, tol, tie=self.has_tie)
        return phi

    def _newton(self, phi, r, active, objective, grad_curv, exact, max_newton, tol, tie):
        """Damped Newton / Fisher scoring in place on the rows of ``phi`` marked ``active`` (see mstep_items)."""
        free = self.free
        subset = active.copy()
        # asymptotes (logit scale) move at most one unit per EM cycle: an early, poor posterior must not push
        # c to 0 (logit -> -inf), where its gradient vanishes and later cycles could never bring it back
        lo, hi = phi - self._cycle_cap, phi + self._cycle_cap
        f = np.full(self.n_items, -np.inf)
        rows0 = np.flatnonzero(subset | (self.tied if tie else False))
        f[rows0] = objective(phi[rows0], r[rows0], rows0)
        eye = np.eye(phi.shape[1])
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
                else:
                    mat = np.where(fm, curv, eye[None])
                grad = np.where(fr, grad, 0.0)
                diag = np.maximum(np.abs(np.diagonal(mat, axis1=1, axis2=2)), 1e-12)
                mat = mat + 1e-10 * diag[:, :, None] * eye[None]
                try:
                    step = np.linalg.solve(mat, grad[:, :, None])[:, :, 0]
                except np.linalg.LinAlgError:
                    step = grad / diag
                step = np.where(fr, step, 0.0)
                step /= np.maximum(1.0, (np.abs(step) / max_step[idx]).max(axis=1, keepdims=True))
                taken = np.zeros(idx.size)
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
                    f[idx[acc]] = f_new[ok]
                    pend = pend[~ok]
                    if pend.size == 0:
                        break
                    mult /= 2
                active[idx[taken < tol]] = False
            if tie:
                phi[:], f = self._tied_slope_step(phi, r, f)
                if self._last_tie_move >= tol:
                    active |= subset
            if not active.any() and (not tie or self._last_tie_move < tol):
                break

    @property
    def _plain_rows(self) -> np.ndarray:
        """Items whose only free parameters are a slope and an intercept of a logistic curve without asymptotes."""
        if "_plain" not in self.__dict__:
            plain = (self.family == DICH) & ~self.tied
            if self.phi0.shape[1] >= 4:
                plain &= ~self.free[:, 2:4].any(axis=1)
                plain &= (self.phi0[:, 2] == -np.inf) & (self.phi0[:, 3] == np.inf)
            self.__dict__["_plain"] = plain
        return self.__dict__["_plain"]

    @property
    def _asymptote_rows(self) -> np.ndarray:
        """Dichotomous items with a lower or upper asymptote (3PL/4PL), not sharing a common slope."""
        return (self.family == DICH) & ~self.tied & ~self._plain_rows

    def _asym_objective(self, phi, r, idx):
        """:meth:`_item_objective` of 3PL/4PL rows on ``(I, Q)`` arrays."""
        *_, lp1, lp0 = dich_parts(phi, self.theta)
        with np.errstate(invalid="ignore"):
            f = np.einsum("iq,iq->i", r[:, :, 1], lp1) + np.einsum("iq,iq->i", r[:, :, 0], lp0)
        if self.priors:
            f = f + prior_terms(self.priors, self.family[idx], self.n_cat[idx], phi, self._prior_free[idx])[0]
        return np.where(np.isfinite(f), f, -np.inf)

    def _asym_grad_curv(self, phi, r, exact=True, idx=None):
        """Gradient, Fisher information and negative Hessian of 3PL/4PL rows, ``phi = [a, delta, gamma, omega]``.

        With ``P = c + (u - c) s``: ``dP/dz = (u - c) s (1 - s)``, ``dP/dgamma = c (1 - c)(1 - s)``,
        ``dP/domega = u (1 - u) s``; the gradient is ``sum_q e dP`` with ``e = r1 / P - r0 / (1 - P)``, the
        Fisher information ``sum_q n dP dP^T / (P (1 - P))`` and the negative Hessian
        ``sum_q (r1 / P^2 + r0 / (1 - P)^2) dP dP^T - e d2P``.
        """
        parts = dich_parts(phi, self.theta)
        _, s, sc, c, u, lp1, lp0 = parts
        p1, p0 = np.exp(lp1), np.exp(lp0)
        r1, r0 = r[:, :, 1], r[:, :, 0]
        pz = (u - c) * s * sc
        deriv = np.stack([pz * self.theta, pz, c * (1 - c) * sc, u * (1 - u) * s], axis=2)  # (I, Q, 4) dP/dphi
        e = r1 / p1 - r0 / p0
        grad = np.einsum("iq,iqr->ir", e, deriv)
        wf = np.sqrt((r1 + r0) / (p1 * p0))[:, :, None] * deriv
        fisher = wf.transpose(0, 2, 1) @ wf
        wo = np.sqrt(r1 / p1 ** 2 + r0 / p0 ** 2)[:, :, None] * deriv
        neg_h = wo.transpose(0, 2, 1) @ wo - dich_weighted_hessian(parts, self.theta, e)
        if self.priors:
            _, pg, ph = prior_terms(self.priors, self.family[idx], self.n_cat[idx], phi, self._prior_free[idx])
            grad += pg
            fisher -= ph
            neg_h -= ph
        return grad, (fisher, neg_h)

    def _plain_objective(self, phi, r, idx):
        """:meth:`_item_objective` of 2PL rows: ``sum_q r1 z + n log(1 - P)``, ``z = a θ + delta``."""
        z = dich_z(phi, self.theta)
        r1 = r[:, :, 1]
        f = np.einsum("iq,iq->i", r1, z) + np.einsum("iq,iq->i", r1 + r[:, :, 0], log_expit(-z))
        if self.priors:
            f = f + prior_terms(self.priors, self.family[idx], self.n_cat[idx], phi, self._prior_free[idx])[0]
        return np.where(np.isfinite(f), f, -np.inf)

    def _plain_grad_fisher(self, phi, r, exact=False, idx=None):
        """:meth:`item_grad_fisher` of 2PL rows: gradient ``sum_q (r1 - n P) [θ, 1]``, Fisher
        ``sum_q n P (1 - P) [θ, 1][θ, 1]^T``."""
        z = dich_z(phi, self.theta)
        prob = expit(z)
        r1 = r[:, :, 1]
        n = r1 + r[:, :, 0]
        resid = r1 - n * prob
        w = n * prob * (1.0 - prob)
        th = self.theta
        grad = np.zeros(phi.shape)
        grad[:, 0], grad[:, 1] = resid @ th, resid.sum(axis=1)
        fisher = np.zeros(phi.shape + (phi.shape[1],))
        fisher[:, 0, 0] = w @ (th * th)
        fisher[:, 0, 1] = fisher[:, 1, 0] = w @ th
        fisher[:, 1, 1] = w.sum(axis=1)
        if self.priors:
            _, pg, ph = prior_terms(self.priors, self.family[idx], self.n_cat[idx], phi, self._prior_free[idx])
            grad += pg
            fisher -= ph
        return grad, fisher

    _last_tie_move = 0.0

    @property
    def _cycle_cap(self):
        cap = np.full(self.phi0.shape, np.inf)
        if cap.shape[1] >= 4:
            cap[self.family == DICH, 2:4] = 1.0
        return cap

    @property
    def _max_step(self):
        cap = np.full(self.phi0.shape, 2.0)
        if cap.shape[1] >= 4:
            cap[self.family == DICH, 2:4] = 1.0
        return cap

    @property
    def _use_newton(self) -> bool:
        """Newton pays where an item estimates an asymptote (3PL/4PL); 2PL's Fisher scoring is Newton already."""
        return bool((self.free[:, 2:4] & (self.family == DICH)[:, None]).any()) if self.free.shape[1] >= 4 else False

    def _tied_slope_step(self, phi, r, f_old):
        grad, fisher = self.item_grad_fisher(phi, r)
        g = grad[self.tied, 0].sum()
        h = fisher[self.tied, 0, 0].sum()
        step = float(np.clip(g / max(h, 1e-12), -1.0, 1.0))
        total_old = f_old[self.tied].sum()
        for _ in range(25):
            trial = phi.copy()
            trial[self.tied, 0] += step
            f_new = self._item_objective(trial, r)
            if f_new[self.tied].sum() >= total_old - 1e-12 * abs(total_old):
                self._last_tie_move = abs(step)
                return trial, np.where(self.tied, f_new, f_old)
            step /= 2
        self._last_tie_move = 0.0
        return phi, f_old

    def mstep_latent(self, latent, g_mass):
        """Posterior-moment update of the free latent means and SDs."""
        if not self.latent_free.any():
            return latent
        latent = latent.copy()
        mass = g_mass.sum(axis=1)
        m1 = g_mass @ self.theta / mass
        for g in range(self.n_groups):
            mu = m1[g] if self.latent_free[g, 0] else latent[g, 0]
            if self.latent_free[g, 0]:
                latent[g, 0] = mu
            if self.latent_free[g, 1]:
                var = float(g_mass[g] @ (self.theta - mu) ** 2 / mass[g])
                latent[g, 1] = math.sqrt(max(var, 1e-6))
        return latent

    def em_map(self, x, stats):
        """One EM step from the E-step statistics at ``x``."""
        phi, latent = self.unpack(x)
        _, _, r, g_mass = stats
        phi = self.mstep_items(phi, r)
        latent = self.mstep_latent(latent, g_mass)
        return self.pack(phi, latent)


def run_em(problem: Problem, settings: EMSettings, progress=None) -> EMState:
    """Iterate EM (SQUAREM-accelerated unless ``settings.accelerate == "none"``) to convergence."""
    problem.count_dtype = np.float32 if settings.tol >= 1e-5 else np.float64
    x = problem.pack(problem.phi0, problem.latent0)
    stats = problem.estep(x)
    if stats is None:
        raise FloatingPointError("the start values give a non-finite likelihood")
    n_estep, n_iter = 1, 0
    trace = [stats[0]]
    converged = False
    change, where, gain = math.inf, -1, math.inf

    def plain(x_cur, st):
        nonlocal n_iter, n_estep, change, where, gain
        x_new = problem.em_map(x_cur, st)
        n_iter += 1
        st_new = problem.estep(x_new)
        n_estep += 1
        diff = np.abs(x_new - x_cur)
        where = int(np.argmax(diff)) if diff.size else -1
        change = float(diff.max()) if diff.size else 0.0
        gain = st_new[1] - st[1]
        trace.append(st_new[0])
        return x_new, st_new

    def done():
        return change < settings.tol and abs(gain) < settings.loglik_tol

    while n_iter < settings.max_iter:
        x1, st1 = plain(x, stats)
        if done() or settings.accelerate == "none":
            x, stats = x1, st1
            if progress:
                progress(n_iter, stats[0], change)
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
            st_try = problem.estep(x_try)
            n_estep += 1
            if st_try is not None and np.isfinite(st_try[1]) and st_try[1] >= st2[1] - 1e-9 * abs(st2[1]):
                accepted = (x_try, st_try)
                break
            alpha = (alpha - 1.0) / 2.0
            if alpha > -1.05:
                break
        x, stats = accepted if accepted is not None else (x2, st2)
        trace.append(stats[0])
        if progress:
            progress(n_iter, stats[0], change)
    phi, latent = problem.unpack(x)
    return EMState(x=x, loglik=stats[0], objective=stats[1], n_iter=n_iter, n_estep=n_estep, converged=converged,
                   max_change=change, where_change=where, loglik_gain=gain, trace=trace)
