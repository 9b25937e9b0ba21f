"""Response matrices: validation at the edge, then categories plus a mask.

At the API edge a response matrix is ``(N, I)`` in the bank's item order
with ``NaN`` for "not administered". Inside, it is an integer category
matrix (0 where missing) and a boolean mask (DESIGN.md convention 5).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..exceptions import ResponseValidationError

__all__ = ["category_counts", "checked_category_counts", "invalid_responses_message", "ResponseMatrix",
           "SparseResponses", "prepare_responses", "gather_on_grid"]

_MAX_LISTED = 10


@dataclass(frozen=True)
class ResponseMatrix:
    """Validated responses.

    Attributes
    ----------
    values : ndarray of float, ``(N, I)`` -- observed category, 0.0 where not administered
    mask : ndarray of bool, ``(N, I)`` -- True where the item was administered
    complete : bool -- every item administered to every examinee
    """

    values: np.ndarray
    mask: np.ndarray
    complete: bool = False

    @classmethod
    def from_categories(cls, category, mask) -> ResponseMatrix:
        mask = np.asarray(mask, dtype=bool)
        values = np.where(mask, np.asarray(category, dtype=float), 0.0)
        return cls(values, mask, bool(mask.all()))

    @property
    def n_persons(self) -> int:
        return self.values.shape[0]

    @cached_property
    def category(self) -> np.ndarray:
        """Integer categories, 0 where not administered."""
        return self.values.astype(np.int32)

    @cached_property
    def mask_float(self) -> np.ndarray:
        return self.mask.astype(float)

    @cached_property
    def n_answered(self) -> np.ndarray:
        return np.full(self.n_persons, self.mask.shape[1]) if self.complete else self.mask.sum(axis=1)

    def indicator(self, k: int) -> np.ndarray:
        """Float indicator matrix ``X_k = [administered and category == k]`` for ``k >= 1``."""
        if k < 1:
            raise ValueError("indicator(k) is for k >= 1; category 0 is mask - sum of the others")
        return (self.values == k).astype(float)

    def rows(self, index) -> ResponseMatrix:
        mask = self.mask[index]
        return ResponseMatrix(self.values[index], mask, bool(mask.all()))


class SparseResponses:
    """Responses in long format -- one entry per answer -- for adaptive data, where a persons × items matrix
    would be 95% empty (100,000 candidates of a 2,000-item pool).

    It offers what the estimators use of a :class:`ResponseMatrix` (``values``, ``mask_float`` and
    ``indicator(k)`` as sparse matrices for :func:`gather_on_grid`; ``rows``; ``n_answered``) and evaluates the
    model only at the answers given (:meth:`observed`), so ML, MAP, WLE and EAP run on it unchanged.

    Parameters
    ----------
    person, item, category : int arrays ``(R,)`` -- validated answers (categories within each item's range)
    n_persons, n_items : int
    """

    complete = False

    def __init__(self, person, item, category, n_persons: int, n_items: int):
        self.person = np.asarray(person, dtype=np.int64)
        self.item = np.asarray(item, dtype=np.int64)
        self.cat = np.asarray(category, dtype=np.int64)
        self.shape = (int(n_persons), int(n_items))
        self._cache: dict = {}

    @property
    def n_persons(self) -> int:
        return self.shape[0]

    def _csr(self, key, data):
        if key not in self._cache:
            from scipy import sparse

            self._cache[key] = sparse.csr_matrix((data, (self.person, self.item)), shape=self.shape)
        return self._cache[key]

    @property
    def values(self):
        return self._csr("values", self.cat.astype(float))

    @property
    def mask_float(self):
        return self._csr("mask", np.ones(self.cat.size))

    def indicator(self, k: int):
        return self._csr(("indicator", k), (self.cat == k).astype(float))

    @cached_property
    def n_answered(self) -> np.ndarray:
        return np.bincount(self.person, minlength=self.n_persons)

    def rows(self, index) -> SparseResponses:
        index = np.asarray(index, dtype=np.int64)
        pos = np.full(self.n_persons, -1, dtype=np.int64)
        pos[index] = np.arange(index.size)
        keep = pos[self.person] >= 0
        return SparseResponses(pos[self.person[keep]], self.item[keep], self.cat[keep], index.size, self.shape[1])

    def observed(self, arrays, theta, need_warm: bool):
        """Score, second derivative, information (and Warm's J) of each person at its own θ: ``(N,)`` each."""
        tm = arrays.terms_at(np.asarray(theta, dtype=float)[self.person], self.item)
        n = self.n_persons
        pick = self.cat[:, None]
        g = np.bincount(self.person, np.take_along_axis(tm.dlog_prob, pick, 1)[:, 0], n)
        h = np.bincount(self.person, np.take_along_axis(tm.d2log_prob, pick, 1)[:, 0], n)
        info = np.bincount(self.person, tm.information, n)
        j = np.bincount(self.person, tm.warm_j(), n) if need_warm else None
        return g, h, info, j


def category_counts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(answered (I,), counts (I, K))``: each item's answered cells and how many fell in each category
    ``0..K-1`` (``K - 1`` the largest response, at least 1); None when some answered cell is not a whole number
    from 0 to 1000 (negative, fractional or infinite). One pass per category over the data."""
    n_items = values.shape[1]
    with np.errstate(invalid="ignore"):
        top = np.fmax.reduce(values, axis=0) if values.shape[0] else np.full(n_items, np.nan)
    seen = top[~np.isnan(top)]
    highest = float(seen.max()) if seen.size else 0.0
    if not 0.0 <= highest <= 1000.0:
        return None
    def column_counts(hits):  # an int32 sum down the columns: ~1.5x faster than count_nonzero(axis=0)
        return hits.sum(axis=0, dtype=np.int32 if values.shape[0] < 2 ** 31 else np.int64).astype(np.int64)

    answered = column_counts(values == values)  # NaN != NaN
    counts = np.stack([column_counts(values == k) for k in range(max(int(highest), 1) + 1)], axis=1)
    if np.any(counts.sum(axis=1) != answered):
        return None
    return answered, counts



def checked_category_counts(values: np.ndarray, item_ids, person_ids=None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`category_counts` of calibration data, or :class:`ResponseValidationError` naming the row and item
    of each cell that is not a whole number from 0 to 1000 (NaN = not administered)."""
    summary = category_counts(values)
    if summary is None:
        with np.errstate(invalid="ignore"):
            bad = ~np.isnan(values) & ((values < 0) | (values != np.round(values)) | ~np.isfinite(values)
                                       | (values > 1000))
        raise ResponseValidationError(invalid_responses_message(values, bad, item_ids, np.full(len(item_ids), 1001),
                                                                person_ids=person_ids))
    return summary

def invalid_responses_message(values: np.ndarray, bad: np.ndarray, item_ids, n_cat=None, person_ids=None) -> str:
    """The one report of invalid cells of a response matrix, shared by scoring, the engine and calibration.

    Rows are numbered as the array indexes them (0-based: ``row 2`` is ``x[2]``); a person id is added when the
    data carried ids. Response *files* are reported by file line instead (see :mod:`adaptive.data_io`).
    """
    rows, cols = np.nonzero(bad)
    lines = []
    for r, c in zip(rows[:_MAX_LISTED], cols[:_MAX_LISTED]):
        who = f" (person {person_ids[r]})" if person_ids is not None else ""
        allowed = f"0..{int(n_cat[c]) - 1}" if n_cat is not None else "0, 1, 2, ..."
        lines.append(f"row {r}{who}, item {item_ids[c]!r}: response {float(values[r, c])!r} is not a category "
                     f"{allowed}")
    more = f"\n  ... and {rows.size - _MAX_LISTED} more" if rows.size > _MAX_LISTED else ""
    return (f"{rows.size} invalid response(s); use whole-number categories, NaN (an empty cell) for not "
            "administered:\n  " + "\n  ".join(lines) + more)


def prepare_responses(arrays, responses) -> ResponseMatrix:
    """Check a response matrix against a compiled bank and split it into values and a mask.

    Parameters
    ----------
    arrays : ItemArrays
    responses : array_like, shape ``(N, I)`` or ``(I,)``
        Categories ``0..n_cat-1`` (0/1 for dichotomous items); ``NaN`` (or
        ``None``) = not administered. A :class:`ResponseMatrix` passes through.

    Raises
    ------
    ResponseValidationError
        naming the row and item of each bad value (up to 10 listed).
    """
    if isinstance(responses, ResponseMatrix):
        return responses
    try:
        x = np.asarray(responses, dtype=float)  # no copy for a float64 array: the input is never modified
    except (TypeError, ValueError) as err:
        raise ResponseValidationError(
            f"responses must be numbers (categories) or NaN for not administered: {err}"
        ) from None
    if x.ndim == 1:
        x = x[None, :]
    n_items = arrays.n_items
    if x.ndim != 2 or x.shape[1] != n_items:
        raise ResponseValidationError(
            f"responses have shape {x.shape}, but the bank has {n_items} items: give an (N, {n_items}) "
            "matrix in the bank's item order, NaN where an item was not administered"
        )
    if np.isnan(x.sum()):  # some response is missing (or +inf and -inf both occur: caught below)
        mask = ~np.isnan(x)
        complete = bool(mask.all())
        values = x if complete else np.where(mask, x, 0.0)
    else:
        mask = np.ones(x.shape, dtype=bool)
        complete = True
        values = x
    top = arrays.n_cat - 1
    # fast path: one small-integer cast, one comparison and reductions on the cast; the detailed
    # (row, item) report is built only when something is wrong
    small = np.int8 if top.max(initial=1) < 127 else np.int32
    with np.errstate(invalid="ignore", over="ignore"):
        cat = values.astype(small)
    ok = values.size == 0 or (
        np.array_equal(cat, values) and cat.min() >= 0 and bool(np.all(cat.max(axis=0) <= top))
    )
    if not ok:
        with np.errstate(invalid="ignore"):
            bad = mask & (~np.isfinite(x) | (x != np.floor(x)) | (x < 0) | (x > top[None, :]))
        raise ResponseValidationError(invalid_responses_message(x, bad, arrays.ids, arrays.n_cat))
    out = ResponseMatrix(values, mask, complete)
    out.__dict__["category"] = cat  # seed the cached property: the cast is already done
    return out


def gather_on_grid(table: np.ndarray, resp: ResponseMatrix | SparseResponses) -> np.ndarray:
    """Sum a per-category item table over each person's observed categories, at every grid point.

    ``out[n, q] = sum_i mask[n, i] * table[i, q, category[n, i]]``, computed as
    one matrix product per category (DESIGN.md, "Where the speed comes from"):
    ``M @ T_0 + sum_{k>=1} X_k @ (T_k - T_0)``.

    Parameters
    ----------
    table : ndarray, ``(I, Q, K)``
    resp : ResponseMatrix

    Returns
    -------
    ndarray, ``(N, Q)``
    """
    n_k = table.shape[-1]
    base = table[:, :, 0]
    if n_k == 2:  # dichotomous: the values are the indicator of category 1
        out = resp.values @ (table[:, :, 1] - base)
    else:
        out = np.zeros((resp.n_persons, base.shape[1]))
    if resp.complete:
        out += base.sum(axis=0)
    else:
        out += resp.mask_float @ base
    if n_k == 2:
        return out
    for k in range(1, n_k):
        diff = table[:, :, k] - base
        if np.any(diff):  # skip categories no item has (padding)
            out += resp.indicator(k) @ diff
    return out
