"""Ability estimation and score scales, vectorized over examinees.

* :func:`estimate_ability` -- one entry point for EAP, MAP, ML and WLE;
* :mod:`.estimators` -- the estimators themselves;
* :mod:`.sum_score` -- Lord-Wingersky recursion, EAP for sum scores;
* :mod:`.plausible` -- plausible values;
* :mod:`.scale` -- scaled scores, pass probability, test characteristic curve.
"""

from __future__ import annotations

from ..exceptions import ScoringError
from ..irt.arrays import DEFAULT_GRID
from .estimators import (
    METHODS,
    ThetaEstimate,
    expected_a_posteriori,
    grid_log_likelihood,
    maximum_a_posteriori,
    maximum_likelihood,
    normal_log_prior,
    weighted_likelihood,
)
from .plausible import plausible_values
from .responses import ResponseMatrix, prepare_responses
from .scale import (
    ScoreScale,
    expected_raw_score,
    pass_probability,
    percent_correct,
    theta_for_raw_score,
)
from .standard import PassStandard
from .sum_score import SumScoreTable, eap_sum_score, sum_score_distribution

__all__ = [
    "estimate_ability",
    "ThetaEstimate",
    "expected_a_posteriori",
    "maximum_a_posteriori",
    "maximum_likelihood",
    "weighted_likelihood",
    "grid_log_likelihood",
    "normal_log_prior",
    "ResponseMatrix",
    "prepare_responses",
    "plausible_values",
    "ScoreScale",
    "PassStandard",
    "pass_probability",
    "expected_raw_score",
    "percent_correct",
    "theta_for_raw_score",
    "SumScoreTable",
    "eap_sum_score",
    "sum_score_distribution",
    "METHODS",
]


def _arrays_of(bank):
    return bank.compile() if hasattr(bank, "compile") else bank


def estimate_ability(
    bank,
    responses,
    method: str = "eap",
    prior_mean: float = 0.0,
    prior_sd: float = 1.0,
    grid=DEFAULT_GRID,
    bounds=(-4.0, 4.0),
    *,
    prior=None,
    se_information: str = "expected",
) -> ThetaEstimate:
    """Estimate ability for every row of a response matrix.

    Parameters
    ----------
    bank : ItemBank or ItemArrays
    responses : array_like, ``(N, I)`` in the bank's item order; NaN = not administered
    method : {"eap", "map", "ml", "wle"}
    prior_mean, prior_sd : normal prior for EAP and MAP
    grid : (lo, hi, n) or points -- EAP quadrature (default 61 points on [-6, 6], as everywhere); MAP searches its range
    bounds : (lo, hi) -- range of ML and WLE
    prior : array_like ``(Q,)``, optional -- EAP prior weights on the grid
    se_information : {"expected", "observed"} -- information used for MAP/ML/WLE SEs

    Returns
    -------
    ThetaEstimate
        with arrays ``.theta`` and ``.se`` of shape ``(N,)``; for a
        :class:`~adaptive.bank.multidim.MultidimBank` a :class:`~adaptive.scoring.multidim.VectorEstimates` with
        ``.theta`` and ``.se`` ``(N, K)`` and ``.cov`` ``(N, K, K)`` (EAP on the product grid or MAP; the prior
        is the bank's latent N(μ, Σ) unless ``prior=(mean vector, covariance)`` is given).

    Examples
    --------
    >>> from adaptive import ItemBank, estimate_ability
    >>> bank = ItemBank(items=[{"id": f"Q{k}", "a": 1.5, "b": b} for k, b in enumerate([-1.0, 0.0, 1.0])])
    >>> est = estimate_ability(bank, [[1, 1, 0], [1, float("nan"), 1]], method="wle")
    >>> est.theta.shape
    (2,)
    """
    from ..bank.multidim import MultidimBank

    if isinstance(bank, MultidimBank):
        from .multidim import estimate_vector

        mean, cov = (None, None) if prior is None else prior
        return estimate_vector(bank, responses, method=str(method).lower(), prior_mean=mean,  # type: ignore
                               prior_cov=cov)
    arrays = _arrays_of(bank)
    method = str(method).lower()
    if method == "eap":
        return expected_a_posteriori(arrays, responses, grid=grid, prior_mean=prior_mean, prior_sd=prior_sd,
                                     prior=prior)
    if prior is not None:
        raise ScoringError(f"a prior on the grid is used by EAP only; method {method!r} takes prior_mean/prior_sd")
    if method in ("map", "bm"):
        from ..irt.arrays import theta_grid

        pts = theta_grid(grid)
        return maximum_a_posteriori(arrays, responses, prior_mean=prior_mean, prior_sd=prior_sd,
                                    bounds=(pts[0], pts[-1]), se_information=se_information)
    if method == "ml":
        return maximum_likelihood(arrays, responses, bounds=bounds, se_information=se_information)
    if method in ("wle", "wl"):
        return weighted_likelihood(arrays, responses, bounds=bounds, se_information=se_information)
    raise ScoringError(f"unknown method {method!r}; choose one of {METHODS}")
