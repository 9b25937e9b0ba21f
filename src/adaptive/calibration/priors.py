"""Item-parameter priors for MAP calibration (normal, lognormal, beta).

A prior is set per IRT parameter name and applies to every item that
estimates that parameter:

=============  ====================================================  =================================
name           the parameter                                         families
=============  ====================================================  =================================
``a``          slope                                                 all with a free slope
``b``          difficulty ``b = -delta / a``                         dichotomous
``intercept``  slope-intercept ``delta`` (mirt's ``d``)              dichotomous; graded/gpcm ``d_k``
``c``          lower asymptote (guessing)                            3PL, 4PL
``d``          upper asymptote                                       4PL
=============  ====================================================  =================================

Densities are on the parameter's own scale (a beta prior on ``c`` is a
density in ``c``), so the MAP estimate is the mode of the posterior in IRT
units. Named sets (``priors="bilog"``):

* ``"3pl"``: ``c ~ Beta(6, 16)``, BILOG-MG's default guessing prior for
  four-option items (``Beta(20p + 1, 20(1 - p) + 1)`` with ``p = 1/4``);
* ``"bilog"``: the same plus ``a ~ lognormal(0, 0.5)``.

Examples
--------
>>> p = parse_priors({"a": "lognormal(0, 0.5)", "c": ("beta", 6, 16)})
>>> sorted(p), p["c"]
(['a', 'c'], Prior(kind='beta', p1=6.0, p2=16.0))
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

__all__ = ["Prior", "parse_priors", "PRIOR_SETS"]

_PARAMS = ("a", "b", "intercept", "c", "d")


@dataclass(frozen=True)
class Prior:
    """``kind`` in {"normal", "lognormal", "beta"}: normal(mean, sd), lognormal(meanlog, sdlog), beta(alpha, beta)."""

    kind: str
    p1: float
    p2: float

    def __post_init__(self):
        if self.kind not in ("normal", "lognormal", "beta"):
            raise ValueError(f"prior kind {self.kind!r} is not one of normal, lognormal, beta")
        finite = np.isfinite(self.p1) and np.isfinite(self.p2)
        if not finite or self.p2 <= 0 or (self.kind == "beta" and self.p1 <= 0):
            raise ValueError(f"prior {self.kind}({self.p1}, {self.p2}): the second parameter (sd or beta) must be "
                             "positive and finite" + (", and alpha positive" if self.kind == "beta" else ""))

    def __str__(self) -> str:
        return f"{self.kind}({self.p1:g}, {self.p2:g})"


PRIOR_SETS = {
    "3pl": {"c": Prior("beta", 6.0, 16.0)},
    "bilog": {"a": Prior("lognormal", 0.0, 0.5), "c": Prior("beta", 6.0, 16.0)},
}

_TEXT = re.compile(r"^\s*(normal|lognormal|beta)\s*\(\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)\s*\)\s*$")


def _one(name, spec) -> Prior:
    if isinstance(spec, Prior):
        return spec
    if isinstance(spec, str):
        m = _TEXT.match(spec)
        if not m:
            raise ValueError(f"prior for {name!r}: {spec!r} is not of the form 'normal(m, s)', 'lognormal(m, s)' "
                             "or 'beta(alpha, beta)'")
        return Prior(m.group(1), float(m.group(2)), float(m.group(3)))
    if isinstance(spec, (tuple, list)) and len(spec) == 3:
        return Prior(str(spec[0]), float(spec[1]), float(spec[2]))
    raise ValueError(f"prior for {name!r}: give 'normal(m, s)', ('beta', 6, 16) or a Prior, not {spec!r}")


def parse_priors(priors) -> dict[str, Prior]:
    """Normalize ``None``, a set name, or a mapping ``{param: spec}`` to ``{param: Prior}``."""
    if priors is None:
        return {}
    if isinstance(priors, str):
        if priors not in PRIOR_SETS:
            raise ValueError(f"unknown prior set {priors!r}; named sets: {sorted(PRIOR_SETS)}, or give a mapping "
                             "like {'c': 'beta(6, 16)'}")
        return dict(PRIOR_SETS[priors])
    if not hasattr(priors, "items"):
        raise ValueError(f"priors={priors!r}: give a named set {sorted(PRIOR_SETS)} or a mapping like "
                         "{'c': 'beta(6, 16)'}")
    out = {}
    for name, spec in dict(priors).items():
        if name not in _PARAMS:
            raise ValueError(f"prior on unknown parameter {name!r}; priors can be set on {list(_PARAMS)}")
        out[name] = _one(name, spec)
    if "b" in out and "intercept" in out:
        raise ValueError("set a prior on 'b' or on 'intercept', not both")
    return out


def _direct(prior: Prior, x):
    """log density, first and second derivative in x itself."""
    x = np.asarray(x, dtype=float)
    if prior.kind == "normal":
        z = (x - prior.p1) / prior.p2 ** 2
        return -0.5 * (x - prior.p1) ** 2 / prior.p2 ** 2, -z, np.full_like(x, -1.0 / prior.p2 ** 2)
    # lognormal
    with np.errstate(divide="ignore", invalid="ignore"):
        lx = np.log(x)
        s2 = prior.p2 ** 2
        lp = np.where(x > 0, -lx - 0.5 * (lx - prior.p1) ** 2 / s2, -np.inf)
        g = np.where(x > 0, -(1.0 + (lx - prior.p1) / s2) / x, 0.0)
        h = np.where(x > 0, (1.0 + (lx - prior.p1) / s2 - 1.0 / s2) / x ** 2, 0.0)
    return lp, g, h


def _logit_scale(prior: Prior, eta):
    """A prior on p = expit(eta), differentiated in eta (beta: density in p; normal: on eta itself)."""
    if prior.kind != "beta":
        if prior.kind == "lognormal":
            raise ValueError("a lognormal prior does not apply to an asymptote; use beta(alpha, beta)")
        return _direct(prior, eta)
    p = expit(eta)
    al, be = prior.p1 - 1.0, prior.p2 - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        lp = np.where(al != 0, al * np.log(p), 0.0) + np.where(be != 0, be * np.log1p(-p), 0.0)
    return lp, al * (1 - p) - be * p, -(al + be) * p * (1 - p)


def prior_terms(priors: dict[str, Prior], family, n_cat, phi, free):
    """Log prior (per item), gradient ``(I, p)`` and Hessian ``(I, p, p)`` in internal parameters.

    Only parameters that are free contribute. The ``b`` prior uses the Gauss-Newton Hessian (its curvature
    through ``b = -delta / a`` is dropped), which keeps the M-step's Newton matrix negative definite.
    """
    from ..irt.registry import Family

    n_i, p = phi.shape
    lp = np.zeros(n_i)
    grad = np.zeros((n_i, p))
    hess = np.zeros((n_i, p, p))
    if not priors:
        return lp, grad, hess
    dich = np.asarray(family) == Family.DICHOTOMOUS

    def add(rows, col, terms):
        v, g, h = terms
        lp[rows] += v
        grad[rows, col] += g
        hess[rows, col, col] += h

    if "a" in priors:
        rows = free[:, 0]
        if priors["a"].kind == "beta":
            raise ValueError("a beta prior does not apply to a slope; use lognormal(m, s) or normal(m, s)")
        add(rows, 0, _direct(priors["a"], phi[rows, 0]))
    if "intercept" in priors:
        if priors["intercept"].kind != "normal":
            raise ValueError("the intercept prior must be normal(m, s)")
        for col in range(1, p):
            rows = free[:, col] & (~dich | (col == 1))
            add(rows, col, _direct(priors["intercept"], phi[rows, col]))
    if "b" in priors:
        pr = priors["b"]
        if pr.kind != "normal":
            raise ValueError("the b prior must be normal(m, s)")
        rows = dich & free[:, 1]
        a, dl = phi[rows, 0], phi[rows, 1]
        b = -dl / a
        s2 = pr.p2 ** 2
        jac = np.stack([dl / a ** 2, -1.0 / a], axis=1) * free[rows][:, :2]
        lp[rows] += -0.5 * (b - pr.p1) ** 2 / s2
        grad[rows, :2] += (-(b - pr.p1) / s2)[:, None] * jac
        hess[rows, :2, :2] += -jac[:, :, None] * jac[:, None, :] / s2
    for name, col in (("c", 2), ("d", 3)):
        if name in priors and col < p:
            rows = dich & free[:, col]
            add(rows, col, _logit_scale(priors[name], phi[rows, col]))
    return lp, grad, hess
