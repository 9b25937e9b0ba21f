"""Domain subscores: Haberman's PRMSE against its closed form, and the CMCS study's invariants."""

from pathlib import Path

import numpy as np
import pytest

from adaptive import ItemBank
from adaptive.exceptions import DesignError
from adaptive.simulation.subscores import domain_bank, prmse, subscore_study


def test_prmse_is_the_closed_form_for_a_noisy_score():
    """θ̂ = θ + e, e ~ N(0, σ²) independent of θ ~ N(0, 1): PRMSE = corr² = 1 / (1 + σ²)."""
    rng = np.random.default_rng(1)
    theta = rng.standard_normal(200_000)
    for sigma in (0.3, 0.6, 1.0):
        assert prmse(theta + sigma * rng.standard_normal(theta.size), theta) == pytest.approx(1 / (1 + sigma ** 2),
                                                                                                abs=0.005)


@pytest.fixture(scope="module")
def cmcs():
    return ItemBank.from_json(Path(__file__).resolve().parents[2] / "item_pools" / "cmcs" / "bank.json")


def test_domain_bank_puts_each_item_on_its_domain(cmcs):
    multi = domain_bank(cmcs, 0.7)
    arr = cmcs.compile()
    assert multi.factor_names == arr.domains and multi.latent_cov[0, 1] == pytest.approx(0.7)
    assert (np.count_nonzero(multi.slopes, axis=1) == 1).all()
    np.testing.assert_allclose(multi.slopes[np.arange(arr.n_items), arr.domain], arr.a)
    np.testing.assert_allclose(multi.intercepts[:, 0], -arr.a * arr.thresholds[:, 0])


def test_cmcs_subscore_study(cmcs):
    res = subscore_study(cmcs, n=400, correlation=0.8, length=40, rng=3)
    share = {d.name: d.proportion for d in cmcs.blueprint.domains}
    assert res.length == 40 and res.mean_items.sum() == pytest.approx(40)
    for name, items in zip(res.domain, res.mean_items, strict=True):
        assert abs(items - share[name] * 40) <= 1  # the blueprint's counts in both designs
    # borrowing strength: the multidimensional subscores predict each domain better than the observed subscores
    assert (res.prmse_multidim > res.prmse_subscore).all()
    assert ((res.reliability > 0.6) & (res.reliability < 0.95)).all() and (np.abs(res.bias) < 0.1).all()
    assert res.length_multidim_to_target > res.length_unidim_to_target  # every domain costs more than the total
    with pytest.raises(DesignError, match="correlation"):
        subscore_study(cmcs, correlation=1.0)
