"""The 300-item two-dimensional bank and the 200 simulees' full answer matrix of mirtCAT's reference run
(../shared/reference/multidim, README case h; copied into tests/data/multidim)."""

from pathlib import Path

import numpy as np

from adaptive.bank.multidim import MultidimBank

DATA = Path(__file__).resolve().parents[1] / "data" / "multidim"
SIGMA = [[1.0, 0.5], [0.5, 1.0]]


def bank_2d() -> MultidimBank:
    return MultidimBank.read_csv(DATA / "cat2d_bank_300.csv", latent_cov=SIGMA)


def answers_2d() -> np.ndarray:
    return np.loadtxt(DATA / "cat2d_responses_200x300.csv", delimiter=",", skiprows=1)
