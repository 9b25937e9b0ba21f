"""Shared representation of a response model evaluated at some abilities.

Every model family returns, for abilities ``theta`` of any shape ``S`` and
``I`` items with at most ``K`` categories, three arrays of shape
``S + (I, K)``:

* ``log_prob``  -- :math:`\\log P_k(\\theta)`,
* ``dlog_prob`` -- :math:`\\partial_\\theta \\log P_k(\\theta)`,
* ``d2log_prob`` -- :math:`\\partial^2_\\theta \\log P_k(\\theta)`.

Everything else follows without further model code:
:math:`P_k = e^{\\log P_k}`, :math:`P_k' = P_k\\,\\partial\\log P_k`,
:math:`P_k'' = P_k(\\partial^2\\log P_k + (\\partial\\log P_k)^2)` and the
Fisher information :math:`I(\\theta) = \\sum_k P_k (\\partial\\log P_k)^2`
(Samejima 1969; Baker & Kim 2004, ch. 8). Working with the derivatives of
``log P`` keeps every quantity finite at extreme abilities, where ``P``
itself underflows.

Categories an item does not have (padding in a mixed bank) carry
``log_prob = LOG_ZERO`` (a finite floor, so that ``0 * log_prob`` stays 0 in
the matrix products of scoring and calibration), ``prob = 0`` and zero
derivatives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LOG_ZERO", "LogProbTerms", "as_theta"]

#: log-probability stored for a category an item does not have.
LOG_ZERO = -1.0e3


def as_theta(theta) -> np.ndarray:
    """Return ``theta`` as a float array with a trailing axis for items."""
    return np.asarray(theta, dtype=float)[..., None]


@dataclass(frozen=True)
class LogProbTerms:
    """Log category probabilities and their first two θ-derivatives.

    Attributes
    ----------
    log_prob, dlog_prob, d2log_prob : ndarray, shape ``S + (I, K)``
    """

    log_prob: np.ndarray
    dlog_prob: np.ndarray
    d2log_prob: np.ndarray

    @property
    def prob(self) -> np.ndarray:
        """Category probabilities, shape ``S + (I, K)``."""
        return np.exp(self.log_prob)

    @property
    def information(self) -> np.ndarray:
        """Item Fisher information :math:`\\sum_k P_k (\\partial_\\theta \\log P_k)^2`, shape ``S + (I,)``."""
        return np.einsum("...k,...k->...", self.prob, self.dlog_prob**2)

    @property
    def dprob(self) -> np.ndarray:
        """First θ-derivative of the category probabilities."""
        return self.prob * self.dlog_prob

    @property
    def d2prob(self) -> np.ndarray:
        """Second θ-derivative of the category probabilities."""
        return self.prob * (self.d2log_prob + self.dlog_prob**2)

    @property
    def expected_score(self) -> np.ndarray:
        """Expected item score :math:`\\sum_k k P_k`, shape ``S + (I,)``."""
        k = np.arange(self.log_prob.shape[-1], dtype=float)
        return self.prob @ k

    def warm_j(self) -> np.ndarray:
        """Warm's (1989) :math:`J_i(\\theta) = \\sum_k P_k' P_k'' / P_k`, shape ``S + (I,)``.

        Written as :math:`\\sum_k P_k\\,\\partial\\log P_k\\,(\\partial^2\\log P_k + (\\partial\\log P_k)^2)`.
        """
        g = self.dlog_prob
        return np.einsum("...k,...k->...", self.prob, g * (self.d2log_prob + g * g))


def location_jacobian_start(phi: np.ndarray, n_cat: np.ndarray, p: int):
    """The common start of a polytomous family's ``d irt / d phi`` ``(I, p, p)`` with the IRT vector
    ``[a, b_1 .. b_{p-1}]``: ``(jac, a, m, has)`` with ``d a / d a = 1`` filled in, the slopes ``a``, the
    location indices ``m = 1..p-1`` and ``has[i, m-1]``, whether item ``i`` has location ``m``."""
    n_i = phi.shape[0]
    jac = np.zeros((n_i, p, p))
    jac[:, 0, 0] = 1.0
    m = np.arange(1, p)
    return jac, phi[:, 0], m, m[None, :] <= (n_cat[:, None] - 1)


def safe_log(x) -> np.ndarray:
    """``log(x)`` with ``log(0) = -inf`` and no warning."""
    with np.errstate(divide="ignore"):
        return np.log(x)
