"""Classification accuracy and consistency of an adaptive design, by simulation through the engine.

Each simulee (true θ from N(0, 1), or the abilities you give) takes the exam twice on independent streams;
accuracy is the share whose first decision matches the true status (``θ ≥ θ_cut``; a test that ends with no
decision counts as a misclassification), consistency the share whose two decisions agree. The intervals are
95% Wilson intervals of the Monte Carlo error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

from .._random import as_generator
from ..cat.posthoc import simulate_cat
from ..exceptions import DesignError

__all__ = ["CatClassification", "cat_classification"]


@dataclass(frozen=True)
class CatClassification:
    """Simulated accuracy and consistency of an adaptive design (with 95% Wilson intervals)."""

    accuracy: float
    accuracy_ci: tuple[float, float]
    consistency: float
    consistency_ci: tuple[float, float]
    false_pass: float
    false_fail: float
    no_decision: float
    n: int

    def __repr__(self) -> str:
        return (f"CatClassification({self.n} simulees: accuracy {self.accuracy:.4f} ({self.accuracy_ci[0]:.4f}-"
                f"{self.accuracy_ci[1]:.4f}), consistency {self.consistency:.4f} ({self.consistency_ci[0]:.4f}-"
                f"{self.consistency_ci[1]:.4f}); false pass {self.false_pass:.4f}, false fail {self.false_fail:.4f}, "
                f"no decision {self.no_decision:.4f})")


def _ci(k: int, n: int) -> tuple[float, float]:
    ci = binomtest(int(k), int(n)).proportion_ci(0.95, method="wilson")
    return float(ci.low), float(ci.high)


def cat_classification(design, bank, n: int = 10_000, *, thetas=None, seed=0) -> CatClassification:
    """Simulate ``n`` simulees (or ``thetas``) twice through ``design``; see the module docstring."""
    cut = design.theta_cut
    if cut is None:
        raise DesignError("the design has no cut (scale.theta_cut): there is no pass/fail decision to evaluate")
    gen = as_generator(seed)
    theta = gen.normal(size=n) if thetas is None else np.asarray(thetas, dtype=float)
    s1, s2 = gen.integers(0, 2**31, size=2)
    first = simulate_cat(design, bank, thetas=theta, seed=int(s1))
    second = simulate_cat(design, bank, thetas=theta, seed=int(s2))
    d1, d2 = np.asarray(first.decision), np.asarray(second.decision)
    truth = np.where(theta >= cut, "pass", "fail")
    right = d1 == truth
    agree = d1 == d2
    m = theta.size
    return CatClassification(accuracy=float(right.mean()), accuracy_ci=_ci(right.sum(), m),
                             consistency=float(agree.mean()), consistency_ci=_ci(agree.sum(), m),
                             false_pass=float(np.mean((d1 == "pass") & (truth == "fail"))),
                             false_fail=float(np.mean((d1 == "fail") & (truth == "pass"))),
                             no_decision=float(np.mean((d1 != "pass") & (d1 != "fail"))), n=int(m))
