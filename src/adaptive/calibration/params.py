"""The free-parameter vector of a calibration: which internal parameters are estimated, and how they pack.

Items carry internal parameters ``phi (I, p)`` (slope-intercept form, see :mod:`adaptive.irt.registry`);
groups carry a latent mean and SD. The vector EM iterates on holds, in order: the free entries of ``phi``
(row-major), one common slope when items share it (1PL), and the free latent means and log-SDs.
"""

from __future__ import annotations

import numpy as np

from ..irt.registry import Family

__all__ = ["ParameterVector"]


class ParameterVector:
    """Pack and unpack the free parameters of one calibration.

    Parameters
    ----------
    family : (I,) item families (:class:`~adaptive.irt.registry.Family` codes)
    phi0 : (I, p) start (or fixed) internal parameters
    free : (I, p) bool -- parameters estimated item by item
    tied : (I,) bool -- items sharing one estimated common slope (1PL)
    latent0 : (G, 2) start mean and SD; latent_free : (G, 2) bool
    """

    def __init__(self, family, phi0, free, tied, latent0, latent_free):
        self.family = np.asarray(family)
        self.phi0 = np.array(phi0, dtype=float)
        self.free = np.asarray(free, dtype=bool)
        self.tied = np.asarray(tied, dtype=bool)
        self.latent0 = np.array(latent0, dtype=float)
        self.latent_free = np.asarray(latent_free, dtype=bool)
        self.free_idx = np.flatnonzero(self.free.ravel())
        self.n_item_free = int(self.free_idx.size)
        self.has_tie = bool(self.tied.any())
        self.n_latent_free = int(self.latent_free.sum())
        self.n_free = self.n_item_free + int(self.has_tie) + self.n_latent_free

    @property
    def prior_free(self) -> np.ndarray:
        """``(I, p)`` bool: the entries a prior applies to (free ones, and the common slope of tied items)."""
        return self.free | (self.tied[:, None] & (np.arange(self.phi0.shape[1]) == 0)[None, :])

    def pack(self, phi: np.ndarray, latent: np.ndarray) -> np.ndarray:
        parts = [phi.ravel()[self.free_idx]]
        if self.has_tie:
            parts.append(phi[self.tied, 0][:1])
        lat = np.column_stack([latent[:, 0], np.log(latent[:, 1])])
        parts.append(lat[self.latent_free])
        return np.concatenate(parts)

    def unpack(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(phi (I, p), latent (G, 2))`` from the free vector ``x``."""
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

    @property
    def slope_entries(self) -> np.ndarray:
        """Positions in the free vector that hold slopes (each item's ``a`` and the common 1PL slope)."""
        pos = np.flatnonzero(np.asarray(self.free_idx) % self.phi0.shape[1] == 0)
        return np.append(pos, self.n_item_free) if self.has_tie else pos

    @property
    def intercept_entries(self) -> np.ndarray:
        """Positions in the free vector that hold intercepts (a dichotomous item's, a polytomous item's steps)."""
        flat = np.asarray(self.free_idx)
        item, col = np.divmod(flat, self.phi0.shape[1])
        dich = np.asarray(self.family)[item] == Family.DICHOTOMOUS
        return np.flatnonzero(np.where(dich, col == 1, col >= 1))

    def names(self, ids) -> list[str]:
        """A readable name for every entry of the free vector."""
        out = []
        labels = ["a", "intercept", "logit(c)", "logit(d)"]
        for flat in self.free_idx:
            i, j = divmod(int(flat), self.phi0.shape[1])
            lab = labels[j] if int(self.family[i]) == Family.DICHOTOMOUS else ("a" if j == 0 else f"d{j}")
            out.append(f"{ids[i]} {lab}")
        if self.has_tie:
            out.append("common slope a")
        for g in range(self.latent_free.shape[0]):
            if self.latent_free[g, 0]:
                out.append(f"group {g} mean")
            if self.latent_free[g, 1]:
                out.append(f"group {g} log SD")
        return out
