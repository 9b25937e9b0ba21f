"""Parameter expansion of the latent scale (PX-EM; Liu, Rubin & Wu 1998) for unidimensional calibrations.

Plain Bock-Aitkin EM creeps along one direction: moving every slope and intercept together as a change of the
latent scale's location and unit. On the five reference sets its rate there is about 0.8 per cycle (28 to 58
cycles to ``tol = 1e-4``). PX-EM lets the reference group's latent mean and SD float in the M-step. It takes
them from the posterior moments of the E-step, as for any other group. Then it maps the expanded model back
onto the identified one: ``θ = μ + σ θ'`` gives slope ``a σ`` and intercepts ``δ + a μ`` (``d_k + k a μ`` for
GPCM steps; asymptotes unchanged, see :func:`adaptive.irt.mixed.internal_affine`), and the other groups'
``(μ_g - μ) / σ``, ``σ_g / σ``.

The maximum is the same point. The expanded likelihood is constant along the map, so at the maximum of the
identified model the posterior moments of the reference group are 0 and 1, up to the quadrature error of the
grid (integration by parts, ``E[θ | x] = E[Σ_j ∂ log P_j / ∂θ | x]``). Every EM step is still an EM step of
the expanded model.

It applies only when the map is a symmetry of the problem: no prior on slopes or intercepts (a prior pins the
scale); every item's intercepts free for the location part, and every slope free or tied for the scale part; the
reference group's mean (SD) fixed and every other group's mean (SD) free. Anchored (fixed) items fix the scale
themselves, so the expansion turns off.
"""

from __future__ import annotations

import math

import numpy as np

from ..irt.mixed import internal_affine
from ..irt.registry import Family
from .params import ParameterVector

__all__ = ["LatentExpansion"]

#: priors that do not move under a change of the latent scale (logit asymptotes)
_SCALE_FREE_PRIORS = frozenset({"c", "d"})


class LatentExpansion:
    """Which parts of the latent scale (location, unit) a calibration may expand, and the map back.

    Parameters
    ----------
    params : the calibration's free-parameter vector (free, tied, latent_free)
    family, n_cat : (I,) item families and category counts
    priors : dict name -> Prior of the calibration
    """

    def __init__(self, params: ParameterVector, family, n_cat, priors):
        self.family = np.asarray(family)
        self.n_cat = np.asarray(n_cat)
        free, lat = params.free, params.latent_free
        symmetric = set(priors or ()) <= _SCALE_FREE_PRIORS and lat.shape[0] >= 1
        # intercept columns of each item: 1 for dichotomous items, 1..K-1 for polytomous ones
        cols = np.arange(free.shape[1])[None, :]
        dich = (self.family == Family.DICHOTOMOUS)[:, None]
        needed = np.where(dich, cols == 1, (cols >= 1) & (cols < self.n_cat[:, None]))
        intercepts_free = bool(np.all(free | ~needed))
        slopes_free = bool(np.all(free[:, 0] | params.tied))
        self.location = bool(symmetric and intercepts_free and not lat[0, 0] and lat[1:, 0].all())
        self.scale = bool(symmetric and slopes_free and not lat[0, 1] and lat[1:, 1].all())

    @property
    def active(self) -> bool:
        return self.location or self.scale

    def apply(self, phi: np.ndarray, latent: np.ndarray, group_mass: np.ndarray, theta: np.ndarray):
        """``(phi, latent)`` mapped back from the expanded M-step whose reference-group latent is the posterior
        moments in ``group_mass[0]`` (``(G, Q)`` expected persons per group and node)."""
        mass = group_mass[0]
        total = float(mass.sum())
        if not self.active or not total > 0:
            return phi, latent
        mu = float(mass @ theta) / total if self.location else 0.0
        sd = math.sqrt(float(mass @ (theta - mu) ** 2) / total) if self.scale else 1.0
        # an early, poor posterior may be far from N(0, 1): the move is bounded; the bound never binds near the
        # maximum, where the moments are 0 and 1
        mu, sd = min(max(mu, -1.0), 1.0), min(max(sd, 0.5), 2.0)
        phi = internal_affine(self.family, self.n_cat, phi, mu, sd)
        latent = latent.copy()
        latent[1:, 0] = (latent[1:, 0] - mu) / sd
        latent[1:, 1] = latent[1:, 1] / sd
        return phi, latent
