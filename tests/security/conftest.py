"""Shared data of the security tests: the CMCS design on a synthetic bank, with planted cheating."""

import pytest

from adaptive.bank import ItemBank
from adaptive.cat.design import ExamDesign
from adaptive.resources import pool_path
from adaptive.security.planted import plant_cheating
from adaptive.synthetic import synthetic_bank


@pytest.fixture(scope="session")
def cmcs_design() -> ExamDesign:
    return ExamDesign.load(pool_path("cmcs") / "design.json")


@pytest.fixture(scope="session")
def cat_bank() -> ItemBank:
    """A 1,000-item 3PL bank with the CMCS blueprint (5% pretest items)."""
    blueprint = ItemBank.from_json(pool_path("cmcs") / "bank.json").blueprint
    return synthetic_bank(1000, model="3pl", blueprint=blueprint, pretest=0.05, rng=7)


@pytest.fixture(scope="session")
def honest(cmcs_design, cat_bank):
    """1,500 honest candidates of one site and window through the CMCS design."""
    return plant_cheating(cmcs_design, cat_bank, 1500, rng=21, preknowledge=0.0, copiers=0.0, rapid=0.0, proxy=0.0,
                          site_size=1500)


@pytest.fixture(scope="session")
def planted(cmcs_design, cat_bank):
    """1,000 candidates with every kind of planted cheating, in sites of 50."""
    return plant_cheating(cmcs_design, cat_bank, 1000, rng=5, preknowledge=0.05, copiers=0.03, rapid=0.03,
                          proxy=0.03, site_size=50)


# the service fixtures (bundled CMCS pool, in-process clients) for the end-to-end test of the export
from tests.service.conftest import cmcs_bank, cmcs_pool, make_client  # noqa: E402,F401
