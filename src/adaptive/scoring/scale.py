"""Score scales: scaled scores, pass probability, and the test characteristic curve.

Examples
--------
>>> from adaptive.scoring import ScoreScale
>>> scale = ScoreScale(theta_cut=0.25, scaled_cut=300, slope=50, minimum=100, maximum=400)
>>> scale.to_scaled([0.25, 1.0, -9.0]).tolist()
[300.0, 338.0, 100.0]
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy.stats import norm

from ..exceptions import ScoringError
from ..irt.arrays import cell_edges

__all__ = ["ScoreScale", "pass_probability", "expected_raw_score", "percent_correct", "theta_for_raw_score"]


class ScoreScale(BaseModel):
    """A linear reporting scale anchored at the cut.

    ``scaled = scaled_cut + slope * (θ - theta_cut)``, rounded to ``decimals``
    (half away from zero) and clamped to ``[minimum, maximum]``.

    A candidate whose θ is below the cut never sees the passing scaled score:
    when rounding would lift a failing θ to ``scaled_cut``, the reported score
    is one rounding unit below it (e.g. 299), so the number and the decision
    always agree.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    theta_cut: float = Field(ge=-20.0, le=20.0)
    scaled_cut: float = 300.0
    slope: float = Field(50.0, gt=0.0, description="scaled-score points per unit of θ")
    minimum: float = 100.0
    maximum: float = 400.0
    decimals: int = Field(0, ge=0, le=6)

    @model_validator(mode="after")
    def _check(self) -> ScoreScale:
        if not self.minimum < self.maximum:
            raise ValueError(f"minimum {self.minimum} must be below maximum {self.maximum}")
        if not self.minimum <= self.scaled_cut <= self.maximum:
            raise ValueError(f"scaled_cut {self.scaled_cut} must lie within [{self.minimum}, {self.maximum}]")
        if not np.isfinite(self.theta_cut):
            raise ValueError("theta_cut must be finite")
        return self

    def _round(self, x):
        f = 10.0**self.decimals
        return np.sign(x) * np.floor(np.abs(x) * f + 0.5) / f

    def to_scaled(self, theta) -> np.ndarray:
        """Reported scaled scores for abilities ``theta``."""
        t = np.asarray(theta, dtype=float)
        raw = self.scaled_cut + self.slope * (t - self.theta_cut)
        s = self._round(raw)
        unit = 10.0 ** (-self.decimals)
        s = np.where((t < self.theta_cut) & (s >= self.scaled_cut), self.scaled_cut - unit, s)
        return np.clip(s, self.minimum, self.maximum)

    def to_reported(self, theta, passed, failed, undecided) -> np.ndarray:
        """Scaled scores that agree with the decisions (masks over the same entries as ``theta``): a pass is
        reported at or above ``scaled_cut``, a fail below it, and a test with no decision gets none (NaN).

        A decision can disagree with θ̂: a test stopped by a rule (time, SPRT, a minimum not reached) decides
        by that rule, and its score must not say otherwise.
        """
        s = self.to_scaled(theta)
        unit = 10.0 ** (-self.decimals)
        s = np.where(np.asarray(passed, dtype=bool), np.maximum(s, self.scaled_cut), s)
        s = np.where(np.asarray(failed, dtype=bool), np.minimum(s, self.scaled_cut - unit), s)
        return np.where(np.asarray(undecided, dtype=bool), np.nan, s)

    def to_theta(self, scaled) -> np.ndarray:
        """The θ of a scaled score (the unrounded, unclamped inverse)."""
        return self.theta_cut + (np.asarray(scaled, dtype=float) - self.scaled_cut) / self.slope

    def scaled_se(self, se) -> np.ndarray:
        """Standard error on the scaled metric: ``slope * se``."""
        return self.slope * np.asarray(se, dtype=float)


def pass_probability(estimate=None, theta_cut: float = 0.0, *, method: str = "posterior",
                     theta=None, se=None, log_posterior=None, grid=None) -> np.ndarray:
    """P(θ ≥ θcut | responses) for every examinee.

    Parameters
    ----------
    estimate : ThetaEstimate, optional
        An EAP estimate carries its grid posterior; other estimates give θ̂ and SE.
    theta_cut : float
    method : {"posterior", "normal"}
        ``"posterior"``: the posterior mass above the cut on the grid, each
        point's mass spread uniformly over its cell (midpoints between
        points), so the probability moves continuously with the cut.
        ``"normal"``: :math:`\\Phi((\\hat\\theta - \\theta_{cut}) / SE)`.
    theta, se, log_posterior, grid : arrays, optional -- instead of ``estimate``.
    """
    if estimate is not None:
        theta, se = estimate.theta, estimate.se
        log_posterior, grid = estimate.log_posterior, estimate.grid
    if method == "posterior":
        if log_posterior is None or grid is None:
            raise ScoringError("the posterior pass probability needs an EAP estimate (grid posterior); "
                               "use method='normal' for MAP/ML/WLE")
        grid = np.asarray(grid, dtype=float)
        edges = cell_edges(grid)
        above = np.clip((edges[1:] - theta_cut) / (edges[1:] - edges[:-1]), 0.0, 1.0)
        post = np.exp(np.asarray(log_posterior, dtype=float))
        post /= post.sum(axis=-1, keepdims=True)
        return np.clip(post @ above, 0.0, 1.0)
    if method == "normal":
        theta = np.asarray(theta, dtype=float)
        se = np.asarray(se, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(se > 0, (theta - theta_cut) / np.where(se > 0, se, 1.0), np.sign(theta - theta_cut) * np.inf)
        return norm.cdf(z)
    raise ScoringError(f"method must be 'posterior' or 'normal', got {method!r}")


def expected_raw_score(arrays, theta) -> np.ndarray:
    """Test characteristic curve: expected summed score on the items of ``arrays`` at ``theta``."""
    return arrays.expected_score(theta).sum(axis=-1)


def percent_correct(arrays, theta) -> np.ndarray:
    """Expected percent of the maximum score at ``theta``."""
    return 100.0 * expected_raw_score(arrays, theta) / arrays.max_score


def theta_for_raw_score(arrays, raw, bounds=(-10.0, 10.0), tol=1e-10) -> np.ndarray:
    """Invert the test characteristic curve: the θ whose expected score equals ``raw``.

    Used to turn a raw cut (e.g. 52 of 75 on a reference form) into a θ cut.
    The TCC is increasing in θ for every model here, so bisection on
    ``bounds`` finds the unique root, vectorized over ``raw``.

    Raises
    ------
    ScoringError
        when a raw score lies outside the TCC's range on ``bounds`` (with a
        3PL form the TCC never falls below the sum of the c parameters).
    """
    r = np.asarray(raw, dtype=float)
    lo_b, hi_b = float(bounds[0]), float(bounds[1])
    e_lo, e_hi = expected_raw_score(arrays, np.array([lo_b, hi_b]))
    bad = (r <= e_lo) | (r >= e_hi) | ~np.isfinite(r)
    if np.any(bad):
        first = np.atleast_1d(r)[np.atleast_1d(bad)][0]
        raise ScoringError(
            f"raw score {first!r} is outside the expected-score range ({e_lo:.4f}, {e_hi:.4f}) of the form on "
            f"θ in [{lo_b}, {hi_b}] (max score {arrays.max_score}); pick a raw score inside it"
        )
    lo = np.full(r.shape, lo_b)
    hi = np.full(r.shape, hi_b)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        below = expected_raw_score(arrays, mid) < r
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
        if np.all(hi - lo < tol):
            break
    return 0.5 * (lo + hi)
