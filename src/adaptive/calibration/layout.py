"""The E-step's indicator layout: response data as a matrix ``Z`` whose products with grid tables give every
person's log-likelihood at every node and the expected counts (DESIGN.md, "Calibration E-step = matrix
products"; :mod:`adaptive.calibration.em` describes the two layouts and the incremental product).

:class:`IndicatorLayout` owns ``Z`` (dense or sparse), its row blocks and the thread pool that multiplies
them; it knows nothing of item parameters: callers pass log-probabilities ``(I, Q, K)`` and log prior weights.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp

__all__ = ["IndicatorLayout"]

# (process id, executor): a forked child makes its own (the parent's threads are not in it)
_POOL: tuple[int | None, ThreadPoolExecutor | None] = (None, None)
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL[0] != os.getpid():
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
            _POOL = (os.getpid(), ThreadPoolExecutor(max_workers=max(1, min(cores, 8)),
                                                     thread_name_prefix="adaptive-estep"))
        assert _POOL[1] is not None
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


def _node_sums(e: np.ndarray) -> np.ndarray:
    """Column sums of ``(Q, n)`` weights in float64. Single-precision weights are summed eight nodes at a time in
    single precision and the partial sums in double: half the cost of a double-precision reduction, relative error
    ~1e-7 (a plain single-precision sum over the nodes drifts six times further: log-likelihood error -3.6e-5
    against -5.7e-6 on the 2PL 5,000 x 50 set, ``benchmarks/calibration_internals.py --setup``)."""
    if e.dtype != np.float32 or e.shape[0] < 16:
        return e.sum(axis=0, dtype=np.float64)
    head = e.shape[0] // 8 * 8
    part = e[:head].reshape(head // 8, 8, e.shape[1]).sum(axis=1)
    return part.sum(axis=0, dtype=np.float64) + e[head:].sum(axis=0, dtype=np.float64)


class IndicatorLayout:
    """Indicator matrix of one data set and its products with grid tables.

    Parameters
    ----------
    values : (N, I) float, NaN = not administered, categories 0..K-1
    n_cat : (I,) category counts
    groups : (N,) int group index 0..G-1; n_groups : G
    n_nodes : Q, the number of quadrature nodes (sizes the threaded row blocks)
    dtype : float64, or float32 for a dense single-precision product
    layout : "auto" (default), "dense" or "sparse" -- "auto" takes the sparse one (one nonzero per answered
        cell) when most cells are missing and the data are large.
    """

    #: largest change of a grid-table entry that an incremental single-precision E-step product may carry
    #: (its log-likelihood error is then below ~1e-4; measured ~1e-6 for the changes of late EM cycles)
    incremental_limit = 0.5

    def __init__(self, values, n_cat, groups, n_groups, n_nodes, dtype=np.float64, layout="auto"):
        values = np.asarray(values, dtype=float)
        n, n_items = values.shape
        self.values = values
        self.n_persons, self.n_items = n, n_items
        self.n_cat = np.asarray(n_cat)
        self.groups = np.asarray(groups, dtype=np.intp)
        self.n_groups = int(n_groups)
        self.dtype = dtype
        mask = ~np.isnan(values)
        self.mask = mask
        self.complete = bool(mask.all())
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
        self.blocks: list = []
        # (table T_0, centered single-precision product C_0, per-person offset m_0) of the last exact product
        self.last_product: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.last_table: np.ndarray | None = None  # the table of the last fast product
        self._category: np.ndarray | None = None
        self._z32: np.ndarray | None = None
        if self.sparse:
            self._build_sparse(values, mask, n_nodes)
        else:
            self._build_dense(values, mask, cols_item, dtype)

    def _build_dense(self, values, mask, cols_item, dtype):
        """Dense ``Z``: one column per (item, category >= 1), one "answered" column per item when data are missing
        and one indicator column per latent group, written straight into the product's dtype (NaN equals no
        category, so missing cells are 0). The group columns make the product add each person's log prior
        weights and the count product give the group masses."""
        n, n_items = values.shape
        z = np.empty((n, self.n_ycols + self.n_maskcols + self.n_groups), dtype=dtype)
        z[:, self.n_ycols + self.n_maskcols:] = 0.0
        if self.k_max == 2:  # 0/1 items only: the indicator is the response itself, 0 where missing (fmax drops NaN)
            np.fmax(values, 0.0, out=z[:, :n_items], casting="same_kind")
        else:
            pos = 0
            for k, items_k in enumerate(cols_item, start=1):
                block = values if items_k.size == n_items else values[:, items_k]
                np.equal(block, float(k), out=z[:, pos:pos + items_k.size], casting="unsafe")
                pos += items_k.size
        if self.n_maskcols:
            np.copyto(z[:, self.n_ycols:self.n_ycols + self.n_maskcols], mask, casting="unsafe")
        z[np.arange(n), self.n_ycols + self.n_maskcols + self.groups] = 1.0
        self.z = z

    def _build_sparse(self, values, mask, n_nodes):
        """Sparse ``Z`` (CSR) for data with many missing cells: one column per (item, category), so every
        answered cell is one nonzero, plus one indicator column per latent group; split in row blocks that
        threads build and multiply in parallel (numpy's element-wise functions and scipy's sparse products
        release the GIL). Each block owns its arrays (scipy copies index arrays that are views of larger ones)."""
        n, n_items = values.shape
        base = np.arange(n_items, dtype=float) * self.k_max
        width = n_items * self.k_max + self.n_groups

        def build(rows):
            # the column of every cell as a float (NaN where not answered), the group's column appended
            code = np.empty((rows.stop - rows.start, n_items + 1))
            np.add(values[rows], base, out=code[:, :n_items])
            code[:, n_items] = n_items * self.k_max + self.groups[rows]
            keep = np.empty(code.shape, dtype=bool)
            keep[:, :n_items] = mask[rows]
            keep[:, n_items] = True
            per_row = np.count_nonzero(keep, axis=1)
            big = code.size >= 2 ** 31 or width >= 2 ** 31
            index_dtype = np.int64 if big else np.int32
            indptr = np.zeros(code.shape[0] + 1, dtype=index_dtype)
            np.cumsum(per_row, out=indptr[1:])
            # row-major: each row's cells in column order, its group last (compress: ~3x faster than a[mask])
            indices = np.compress(keep.ravel(), code.ravel()).astype(index_dtype)
            shape = (code.shape[0], width)
            return (rows, sp.csr_matrix((np.ones(indices.size), indices, indptr), shape=shape),
                    sp.csr_matrix((np.ones(indices.size, dtype=np.float32), indices, indptr), shape=shape))

        self.blocks = _run_blocks(build, _row_blocks(n, n * n_nodes))

    def _product(self, table, single):
        """``Z @ table`` in double precision, or in single precision with ``single``: dense layout ``(Q, N)``
        (node-major, so the posterior's reductions over nodes run across contiguous rows), sparse layout
        ``(N, Q)`` (scipy's natural orientation; its row blocks are filled on threads)."""
        if not self.sparse:
            if single:
                return table.astype(np.float32).T @ self._z_counts(np.float32).T
            return np.asarray(table.astype(self.dtype, copy=False).T @ self.z.T, dtype=np.float64)
        table = table.astype(np.float32 if single else np.float64)
        out = np.empty((self.n_persons, table.shape[1]), dtype=table.dtype)

        def block(b):
            rows, z64, z32 = b
            out[rows] = (z32 if single else z64) @ table

        _run_blocks(block, self.blocks)
        return out

    def _count_product(self, post, count_dtype):
        """``Z.T @ post`` ``(columns, Q)`` with ``post`` in ``count_dtype``."""
        post = post.astype(count_dtype, copy=False)
        if not self.sparse:
            # (Q, N) @ (N, columns): the dense posterior is node-major, so both operands are C-contiguous here
            # (measured ~35% faster than (columns, N) @ (N, Q) on a 5,000 x 50 set)
            return np.asarray((post.T @ self._z_counts(count_dtype)).T, dtype=np.float64)
        single = count_dtype == np.float32
        parts = _run_blocks(lambda b: (b[2] if single else b[1]).T @ post[b[0]], self.blocks)
        return np.sum(parts, axis=0, dtype=np.float64)

    @property
    def category(self) -> np.ndarray:
        """``(N, I)`` int categories, 0 where not administered (see ``mask``)."""
        if self._category is None:
            self._category = np.where(self.mask, self.values, 0).astype(np.int64)
        return self._category

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

        With ``fast`` the table comes from :meth:`_fast_table` (float32 during EM's first steps, else float64
        rebuilt from its centered single-precision form).
        """
        table = self.grid_table(logp, log_weights)
        if not (fast and self.dtype == np.float64):
            return self._product(table, single=False)
        values, offset = self._fast_table(table)
        if offset is None:
            return values
        return np.add(values, offset[:, None] if self.sparse else offset, dtype=np.float64)

    def _fast_table(self, table):
        """``Z @ table`` as ``(float32 values, per-person float64 offset or None)``: the table is ``values +
        offset`` (offset along the persons' axis). What EM needs is precision where it decides convergence:

        * while the table still moves by more than ``incremental_limit`` from one call to the next (the first
          call and EM's first steps), the whole product is taken in single precision, no offset
          (log-likelihood error ~1e-2, far below those steps' gains);
        * after that the product is incremental. An exact product ``P_0 = Z @ T_0`` is kept centered on each
          person's largest value, ``C_0 = P_0 - m_0`` in single precision (offset ``m_0`` in double), and a
          table that moved by at most ``incremental_limit`` from ``T_0`` is ``C_0 + Z @ (T - T_0)`` with the
          small difference product in single precision. Rounding then scales with an entry's distance below
          the person's largest value (where the posterior weight is e^-distance) and with the change, not with
          the log-likelihood itself; the posterior and the counts run in single precision throughout.
        """
        last, self.last_table = self.last_table, table
        if last is None or np.abs(table - last).max() > self.incremental_limit:
            return self._product(table, single=True), None
        prev = self.last_product
        if prev is not None and np.abs(table - prev[0]).max() <= self.incremental_limit:
            return np.add(prev[1], self._product(table - prev[0], single=True)), prev[2]
        full = self._product(table, single=False)
        if self.sparse:
            offset = full.max(axis=1)
            centered = np.subtract(full, offset[:, None], out=full).astype(np.float32)
        else:
            offset = full.max(axis=0)
            centered = np.subtract(full, offset, out=full).astype(np.float32)
        self.last_product = (table, centered, offset)
        return centered.copy(), offset

    def posterior(self, logp, log_weights, fast=False):
        """Posterior weights ``(N, Q)`` and the marginal log-likelihood, from ``logp (I, Q, K)`` and the groups'
        log prior weights ``(G, Q)``.

        With ``fast`` the table comes from :meth:`_fast_table` and the weights are exponentiated and kept in
        float32 (they feed only the float32 count product); the per-person sums that make the log-likelihood
        are accumulated in float64.
        """
        if fast and self.dtype == np.float64:
            a, offset = self._fast_table(self.grid_table(logp, log_weights))
        else:
            a, offset = self.loglik_table(logp, log_weights), None
        a_qn = a.T if self.sparse else a  # (Q, N) view; the weights overwrite the table

        def normalize(persons):
            e = a_qn[:, persons]
            m = e.max(axis=0)
            np.subtract(e, m, out=e)
            # weights below e^-80 (single) / e^-700 (double) of a person's largest are kept at that floor: they
            # change no sum, and subnormal numbers would slow every later product several-fold
            np.maximum(e, -80.0 if e.dtype == np.float32 else -700.0, out=e)
            np.exp(e, out=e)
            s = _node_sums(e)
            e /= s.astype(e.dtype)
            shift = 0.0 if offset is None else offset[persons].sum()
            return float(m.sum(dtype=np.float64) + np.log(s).sum() + shift)

        # threads only with the sparse layout: after a dense BLAS product, OpenBLAS's own threads keep spinning for
        # a while and take the cores that the normalization's threads would need (measured: slower, not faster)
        n = self.n_persons
        blocks = _row_blocks(n, a.size) if self.sparse else [slice(0, n)]
        ll = math.fsum(_run_blocks(normalize, blocks))
        return a_qn.T, ll  # (N, Q)

    def _z_counts(self, count_dtype):
        """The dense indicator matrix ``(N, columns)``, in single precision for the count product (counts feed the
        M-step only; their float32 rounding, ~1e-7 relative, moves no estimate visibly, while the log-likelihood
        stays in float64)."""
        if count_dtype == np.float64:
            return self.z
        if self._z32 is None:
            self._z32 = self.z.astype(np.float32)
        return self._z32

    def counts(self, post, count_dtype=np.float64):
        """Expected counts ``R (I, Q, K)`` and per-group node masses ``(G, Q)`` (``count_dtype``: the precision of
        the count product; float32 halves its cost and moves no estimate visibly, see the module docstring)."""
        u = self._count_product(post, count_dtype)
        n_q = post.shape[1]
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
