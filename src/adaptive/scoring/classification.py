"""Classification accuracy and consistency of a pass/fail decision: Rudner's and Lee's methods for fixed forms.

Accuracy is the probability that the decision matches the candidate's true status (``θ ≥ θ_cut``);
consistency the probability that two independent administrations give the same decision. Both are integrals
over the ability distribution ``g(θ)`` (default N(0, 1), or weights you give on the grid):

* **Rudner (2001, 2005)**: the decision is ``θ̂ ≥ θ_cut`` with ``θ̂ ~ N(θ, SE(θ)²)``,
  ``SE(θ) = 1/sqrt(I(θ))`` from the form's test information, so ``P(pass | θ) = Φ((θ - θ_cut)/SE(θ))``.
* **Lee (2010)**: the decision is the summed score ``X ≥ x_cut``, and ``P(X ≥ x_cut | θ)`` is exact from the
  Lord-Wingersky recursion (compound binomial / multinomial).

Then ``accuracy = ∫ [P(pass|θ) 1{θ ≥ θ_cut} + (1 - P(pass|θ)) 1{θ < θ_cut}] g(θ) dθ``,
``consistency = ∫ [P(pass|θ)² + (1 - P(pass|θ))²] g(θ) dθ``, plus the false-pass and false-fail rates and
Cohen's κ of the two administrations. Rudner's sample version, from each candidate's own θ̂ and SE
(``rudner_from_estimates``), gives ``Φ(|θ̂ - θ_cut| / SE)`` averaged over candidates, and as consistency the
chance that a second administration (``θ̂' ~ N(θ̂, 2 SE²)``) falls on the same side of the cut.

For an adaptive design the decision rule is the engine's; :func:`adaptive.simulation.classification.
cat_classification` estimates the same quantities by simulation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from ..exceptions import ScoringError
from ..irt.arrays import theta_grid
from .sum_score import sum_score_distribution

__all__ = ["ClassificationIndices", "rudner", "lee", "rudner_from_estimates", "indices_from_pass_probability"]


@dataclass(frozen=True)
class ClassificationIndices:
    """Accuracy and consistency of a pass/fail decision.

    Attributes
    ----------
    accuracy, consistency : probabilities; false_pass, false_fail : the two kinds of misclassification
    kappa : Cohen's κ of two administrations (consistency beyond chance)
    pass_rate : expected share passing; method : "rudner", "lee", "rudner (estimates)" or "simulation"
    """

    accuracy: float
    consistency: float
    false_pass: float
    false_fail: float
    kappa: float
    pass_rate: float
    method: str

    def __repr__(self) -> str:
        return (f"ClassificationIndices({self.method}: accuracy {self.accuracy:.4f}, consistency "
                f"{self.consistency:.4f}, kappa {self.kappa:.4f}; false pass {self.false_pass:.4f}, false fail "
                f"{self.false_fail:.4f}; pass rate {self.pass_rate:.4f})")


def _weights(grid, weights):
    pts = theta_grid(grid if grid is not None else (-6.0, 6.0, 241))
    if weights is None:
        w = norm.pdf(pts)
    else:
        w = np.asarray(weights, dtype=float)
        if w.shape != pts.shape or (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
            raise ScoringError(f"weights must be {pts.size} finite non-negative values on the grid")
    return pts, w / w.sum()


def indices_from_pass_probability(p_pass, true_pass, weights, method: str) -> ClassificationIndices:
    """The indices from ``P(pass | θ_q)``, the true status at each point and the weights (which sum to 1)."""
    p = np.clip(np.asarray(p_pass, dtype=float), 0.0, 1.0)
    t = np.asarray(true_pass, dtype=bool)
    w = np.asarray(weights, dtype=float)
    return _indices(float(np.sum(w * p * ~t)), float(np.sum(w * (1 - p) * t)),
                    float(np.sum(w * (p ** 2 + (1 - p) ** 2))), float(np.sum(w * p)), method)


def _indices(false_pass: float, false_fail: float, consistency: float, pass_rate: float,
             method: str) -> ClassificationIndices:
    """The indices, with Cohen's κ of two administrations from the consistency and the pass rate."""
    chance = pass_rate ** 2 + (1 - pass_rate) ** 2
    kappa = (consistency - chance) / (1 - chance) if chance < 1 else float("nan")
    return ClassificationIndices(accuracy=1.0 - false_pass - false_fail, consistency=consistency,
                                 false_pass=false_pass, false_fail=false_fail, kappa=float(kappa),
                                 pass_rate=pass_rate, method=method)


def rudner(arrays, theta_cut: float, *, grid=None, weights=None) -> ClassificationIndices:
    """Rudner's indices of a fixed form (``arrays``: the form's ItemArrays) at ``theta_cut``."""
    pts, w = _weights(grid, weights)
    info = arrays.test_information(pts)
    with np.errstate(divide="ignore"):
        se = np.where(info > 0, 1.0 / np.sqrt(np.maximum(info, 1e-300)), np.inf)
    p_pass = norm.cdf((pts - theta_cut) / se)
    return indices_from_pass_probability(p_pass, pts >= theta_cut, w, "rudner")


def lee(arrays, raw_cut: int, theta_cut: float | None = None, *, grid=None, weights=None) -> ClassificationIndices:
    """Lee's indices of a fixed form passed at summed score ``raw_cut`` or more. The true status is
    ``θ ≥ theta_cut`` (default: the θ where the expected score equals ``raw_cut``, the inverse TCC)."""
    from .scale import theta_for_raw_score

    max_score = int((arrays.n_cat - 1).sum())
    if not 0 < raw_cut <= max_score:
        raise ScoringError(f"raw_cut {raw_cut!r}: give a score from 1 to the form's maximum {max_score}")
    pts, w = _weights(grid, weights)
    dist = sum_score_distribution(arrays.tables(pts))  # (Q, S + 1)
    p_pass = dist[:, int(raw_cut):].sum(axis=1)
    cut = float(theta_for_raw_score(arrays, raw_cut)) if theta_cut is None else float(theta_cut)
    return indices_from_pass_probability(p_pass, pts >= cut, w, "lee")


def rudner_from_estimates(theta, se, theta_cut: float) -> ClassificationIndices:
    """Rudner's sample version from candidates' estimates: each candidate's chance of being on the side of the
    cut their θ̂ is on is ``Φ(|θ̂ - θ_cut| / SE)`` (θ ~ N(θ̂, SE²))."""
    theta = np.asarray(theta, dtype=float)
    se = np.asarray(se, dtype=float)
    ok = np.isfinite(theta) & np.isfinite(se) & (se > 0)
    if not ok.any():
        raise ScoringError("no candidate has a finite θ̂ and a positive SE")
    t, s = theta[ok], se[ok]
    p_true_pass = norm.cdf((t - theta_cut) / s)  # P(θ ≥ cut | θ̂)
    observed_pass = t >= theta_cut
    w = np.full(t.size, 1.0 / t.size)
    false_pass = float(np.sum(w * observed_pass * (1 - p_true_pass)))
    false_fail = float(np.sum(w * ~observed_pass * p_true_pass))
    # consistency: with θ ~ N(θ̂, SE²) and a second θ̂' ~ N(θ, SE²), θ̂' ~ N(θ̂, 2 SE²); the chance that it falls
    # on the same side of the cut as the observed θ̂
    p2 = norm.cdf((t - theta_cut) / (np.sqrt(2.0) * s))
    consistency = float(np.sum(w * np.where(observed_pass, p2, 1 - p2)))
    return _indices(false_pass, false_fail, consistency, float(observed_pass.mean()), "rudner (estimates)")
