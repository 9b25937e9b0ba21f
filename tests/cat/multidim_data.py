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


def assert_live_equals_batch_of_one(bank, design, answers, rng=3):
    """A live session answering from ``answers`` (one row) gives the test a batch of one run the same way gives:
    items, θ̂ and stop reason."""
    from adaptive.cat.multidim import run_mcat
    from adaptive.cat.multidim_session import MultidimSession

    one = run_mcat(bank, design, answers[None, :], rng=rng)
    live = MultidimSession(bank, design, rng=rng)
    while (item := live.next_item()) is not None:
        live.answer(item, int(answers[bank.item_ids.index(item)]))
    assert live.items == tuple(bank.item_ids[j] for j in one.given[0, :one.n_given[0]])
    np.testing.assert_allclose(live.theta, one.theta[0], atol=1e-10)
    assert live.stop_reason == one.stop_labels[0]
