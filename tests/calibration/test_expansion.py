"""Parameter-expanded EM (:mod:`adaptive.calibration.expansion`).

* The map back from the expanded scale is a change of variables: item ``i``'s probabilities at
  ``θ = μ + σ θ'`` under ``phi`` equal those at ``θ'`` under ``internal_affine(phi, μ, σ)`` (closed form,
  every family; hypothesis).
* PX-EM converges to the maximum that textbook Bock-Aitkin EM reaches when it is run to a tight tolerance:
  same log-likelihood, same parameters and latent moments, in fewer cycles. The data are simulated mixed banks
  (2PL, 3PL, graded, GPCM), two groups, missing cells, and a Rasch set.
* The expansion is on only where the change of scale is a symmetry of the problem (no slope or intercept
  prior, no anchor items, the reference latent fixed, every other group's latent free).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import adaptive
from adaptive.calibration.expansion import LatentExpansion
from adaptive.calibration.params import ParameterVector
from adaptive.calibration.priors import parse_priors
from adaptive.irt.mixed import from_irt, internal_affine, internal_log_prob
from adaptive.irt.registry import Family
from adaptive.synthetic import simulate_responses

from .mixed_bank import mixed_bank

FAMILIES = [Family.DICHOTOMOUS, Family.DICHOTOMOUS, Family.GRADED, Family.PARTIAL_CREDIT]


@settings(max_examples=60, deadline=None)
@given(st.floats(-2.5, 2.5), st.floats(0.3, 3.0), st.integers(0, 2 ** 31 - 1))
def test_internal_affine_is_a_change_of_scale(mu, sd, seed):
    rng = np.random.default_rng(seed)
    family = np.array(FAMILIES)
    n_cat = np.array([2, 2, 4, 3])
    a = rng.uniform(0.3, 2.5, 4)
    thr = np.full((4, 3), np.nan)
    thr[0:2, 0] = rng.uniform(-2, 2, 2)
    thr[2] = np.sort(rng.uniform(-2, 2, 3))
    thr[3, :2] = rng.uniform(-2, 2, 2)
    c = np.array([0.0, 0.2, 0.0, 0.0])
    d = np.array([1.0, 0.95, 1.0, 1.0])
    phi = from_irt(family, n_cat, a, thr, c, d, 4)
    theta_new = np.linspace(-3, 3, 13)
    before = internal_log_prob(family, n_cat, phi, mu + sd * theta_new)
    after = internal_log_prob(family, n_cat, internal_affine(family, n_cat, phi, mu, sd), theta_new)
    np.testing.assert_allclose(after, before, rtol=1e-10, atol=1e-10)


def _mixed_data(n_persons=3000, seed=11):
    rng = np.random.default_rng(seed)
    bank = mixed_bank(rng, 16, ("2pl", "graded", "gpcm", "2pl"), (0.7, 2.0))
    groups = rng.integers(0, 2, n_persons)
    theta = rng.standard_normal(n_persons) * np.where(groups == 1, 1.2, 1.0) + 0.5 * groups
    x = simulate_responses(bank.compile(), theta, rng=seed + 1, missing=0.2)
    models = [it.model for it in bank.items]
    return x, models, np.where(groups == 1, "focal", "ref")


def _compare(px, textbook):
    assert px.converged and textbook.converged
    assert abs(px.loglik - textbook.loglik) < 1e-3
    np.testing.assert_allclose(px.a, textbook.a, atol=5e-4)
    np.testing.assert_allclose(px.thresholds, textbook.thresholds, atol=5e-4)
    np.testing.assert_allclose(px.latent, textbook.latent, atol=5e-4)
    assert px.n_iter < textbook.n_iter / 4


def test_px_em_reaches_the_textbook_maximum_mixed_bank_two_groups():
    x, models, groups = _mixed_data()
    px = adaptive.calibrate(x, model=models, groups=groups, reference_group="ref")
    textbook = adaptive.calibrate(x, model=models, groups=groups, reference_group="ref", accelerate="none",
                                  tol=1e-6)
    ex = px.fitted.problem.expansion
    assert ex is not None and ex.location and ex.scale
    assert textbook.fitted.problem.expansion is None
    _compare(px, textbook)


def test_px_em_location_only_for_rasch():
    rng = np.random.default_rng(5)
    b = rng.uniform(-2, 2, 20)
    theta = rng.normal(0.3, 1.3, 2000)
    x = (rng.random((2000, 20)) < 1 / (1 + np.exp(-(theta[:, None] - b[None, :])))).astype(float)
    px = adaptive.calibrate(x, model="rasch")
    ex = px.fitted.problem.expansion
    assert ex.location and not ex.scale  # the Rasch scale comes from the latent SD, which is free
    textbook = adaptive.calibrate(x, model="rasch", accelerate="none", tol=1e-6)
    _compare(px, textbook)


def _expansion(models_family, free, priors=None, latent_free=None, tied=None):
    family = np.asarray(models_family)
    free = np.asarray(free, dtype=bool)
    n = family.size
    lat = np.zeros((1, 2), bool) if latent_free is None else np.asarray(latent_free, dtype=bool)
    pv = ParameterVector(family, np.zeros(free.shape), free, np.zeros(n, bool) if tied is None else tied,
                         np.tile([0.0, 1.0], (lat.shape[0], 1)), lat)
    return LatentExpansion(pv, family, np.full(n, 2), parse_priors(priors) if priors else {})


@pytest.mark.parametrize(("case", "location", "scale"), [
    ("2pl", True, True),
    ("slope prior", False, False),
    ("c prior only", True, True),
    ("anchor item", False, False),
    ("two groups, focal free", True, True),
    ("two groups, focal fixed", False, False),
])
def test_expansion_is_on_only_where_the_scale_is_a_symmetry(case, location, scale):
    fam = [Family.DICHOTOMOUS] * 3
    free = np.tile([True, True, False, False], (3, 1))
    kwargs: dict = {}
    if case == "slope prior":
        kwargs["priors"] = "bilog"
    elif case == "c prior only":
        free[:, 2] = True
        kwargs["priors"] = {"c": "beta(5, 17)"}
    elif case == "anchor item":
        free[0] = False
    elif case == "two groups, focal free":
        kwargs["latent_free"] = [[False, False], [True, True]]
    elif case == "two groups, focal fixed":
        kwargs["latent_free"] = [[False, False], [False, False]]
    ex = _expansion(fam, free, **kwargs)
    assert (ex.location, ex.scale) == (location, scale)

