"""Fixtures of the multidimensional CAT tests: mirtCAT's 300-item 2-d reference bank and its answer matrix."""

import pytest

from .multidim_data import answers_2d, bank_2d


@pytest.fixture(scope="module")
def mcat_bank():
    return bank_2d()


@pytest.fixture(scope="module")
def mcat_answers():
    return answers_2d()
