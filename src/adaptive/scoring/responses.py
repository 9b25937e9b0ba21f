"""Response matrices: validation at the edge, then categories plus a mask.

At the API edge a response matrix is ``(N, I)`` in the bank's item order
with ``NaN`` for "not administered". Inside, it is an integer category
matrix (0 where missing) and a boolean mask (DESIGN.md convention 5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..exceptions import ResponseValidationError

__all__ = ["ResponseMatrix", "prepare_responses", "gather_on_grid"]

_MAX_LISTED = 10


@dataclass(frozen=True)
class ResponseMatrix:
    """Validated responses.

    Attributes
    ----------
    category : ndarray of int, ``(N, I)`` -- observed category, 0 where not administered
    mask : ndarray of bool, ``(N, I)`` -- True where the item was administered
    """

    category: np.ndarray
    mask: np.ndarray

    @property
    def n_persons(self) -> int:
        return self.category.shape[0]

    @property
    def n_answered(self) -> np.ndarray:
        return self.mask.sum(axis=1)

    def indicators(self, n_categories: int) -> list[np.ndarray]:
        """Float indicator matrices ``X_k = [category == k and administered]``, one per category."""
        return [((self.category == k) & self.mask).astype(float) for k in range(n_categories)]

    def rows(self, index) -> ResponseMatrix:
        return ResponseMatrix(self.category[index], self.mask[index])


def prepare_responses(arrays, responses) -> ResponseMatrix:
    """Check a response matrix against a compiled bank and split it into categories and a mask.

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
        x = np.array(responses, dtype=float)
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
    mask = ~np.isnan(x)
    bad = mask & (~np.isfinite(x) | (x != np.round(x)) | (x < 0) | (x > (arrays.n_cat - 1)[None, :]))
    if bad.any():
        rows, cols = np.nonzero(bad)
        lines = [
            f"row {r}, item {arrays.ids[c]!r}: response {float(x[r, c])!r} is not a category 0..{arrays.n_cat[c] - 1}"
            for r, c in zip(rows[:_MAX_LISTED], cols[:_MAX_LISTED])
        ]
        more = f"\n  ... and {rows.size - _MAX_LISTED} more" if rows.size > _MAX_LISTED else ""
        raise ResponseValidationError(
            f"{rows.size} invalid response(s); use whole-number categories, NaN for not administered:\n  "
            + "\n  ".join(lines)
            + more
        )
    category = np.where(mask, x, 0.0).astype(np.int64)
    return ResponseMatrix(category, mask)


def gather_on_grid(table: np.ndarray, resp: ResponseMatrix) -> np.ndarray:
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
    out = resp.mask.astype(float) @ base
    for k in range(1, n_k):
        xk = ((resp.category == k) & resp.mask).astype(float)
        if xk.any():
            out += xk @ (table[:, :, k] - base)
    return out
