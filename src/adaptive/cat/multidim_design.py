"""The design of a multidimensional adaptive test (:mod:`adaptive.cat.multidim`) and its validation."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..exceptions import DesignError

__all__ = ["MultidimDesign", "RULES"]

RULES = ("d_rule", "t_rule", "a_rule", "e_rule", "w_rule", "kl")


def _numeric(value) -> bool:
    """Whether ``value`` (a number or nested sequence) is all finite numbers."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return False
    return bool(np.all(np.isfinite(arr))) and not isinstance(value, (bool, str))


@dataclass(frozen=True)
class MultidimDesign:
    """An MCAT design (see the module docstring). ``domains``: ``{item id: domain}``; ``domain_max`` /
    ``domain_min``: ``{domain: most / fewest items}``; ``enemies``: sets of item ids of which a test holds at most
    one; ``exposure``: Sympson–Hetter parameters ``{item id: k in [0, 1]}`` (an item the rule selects is given with
    probability k, else it is set aside for that test and the next best is taken; 1 for items not named);
    ``pretest`` / ``pretest_count``: unscored items, ``pretest_count`` of them drawn at random for each test and
    given at random positions before ``min_items`` scored items are reached (so every test that stops early still
    has them); their answers are kept but never scored."""

    rule: str = "d_rule"
    include_prior: bool = False
    estimator: str = "map"
    prior_mean: tuple | None = None
    prior_cov: tuple | None = None
    min_items: int = 1
    max_items: int = 30
    se_target: float | None = None
    trace_target: float | None = None
    det_target: float | None = None
    weights: tuple | None = None
    randomesque: int = 1
    domains: dict = field(default_factory=dict)
    domain_max: dict = field(default_factory=dict)
    domain_min: dict = field(default_factory=dict)
    enemies: tuple = ()
    exposure: dict = field(default_factory=dict)
    pretest: tuple = ()
    pretest_count: int = 0
    #: "heuristic" (eligibility by domain minima and maxima) or "shadow" (a shadow test per step,
    #: :mod:`adaptive.cat.multidim_shadow`); seconds one shadow test may take
    content: str = "heuristic"
    shadow_time_limit: float = 10.0

    def check(self, bank) -> None:
        for name in ("min_items", "max_items", "randomesque", "pretest_count"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise DesignError(f"field {name!r}: {v!r} is not a whole number")
        for name in ("se_target", "trace_target", "det_target", "shadow_time_limit"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float, np.floating))
                                  or not np.isfinite(v)):
                raise DesignError(f"field {name!r}: {v!r} is not a finite number")
        for name in ("domains", "domain_max", "domain_min", "exposure"):
            if not isinstance(getattr(self, name), dict):
                raise DesignError(f"field {name!r}: give a mapping (dict)")
        for name in ("prior_mean", "prior_cov", "weights"):
            v = getattr(self, name)
            if v is not None and not _numeric(v):
                raise DesignError(f"field {name!r}: {v!r} holds something that is not a finite number")
        bad = {i: v for i, v in {**self.exposure, **self.domain_max, **self.domain_min}.items() if not _numeric(v)}
        if bad:
            raise DesignError(f"fields 'exposure'/'domain_max'/'domain_min': values {bad} are not numbers")
        k = bank.n_dims
        if self.rule not in RULES:
            raise DesignError(f"field 'rule': {self.rule!r} is not an MCAT rule; use one of {', '.join(RULES)}")
        if self.estimator not in ("map", "eap"):
            raise DesignError(f"field 'estimator': {self.estimator!r}; use 'map' or 'eap'")
        if not 1 <= self.min_items <= self.max_items <= len(bank):
            raise DesignError(f"fields 'min_items'/'max_items': need 1 <= {self.min_items} <= {self.max_items} <= "
                              f"{len(bank)} (the bank's items)")
        if self.prior_mean is not None and np.shape(self.prior_mean) != (k,):
            raise DesignError(f"field 'prior_mean': give {k} numbers, one per factor {list(bank.factor_names)}")
        if self.prior_cov is not None:
            cov = np.asarray(self.prior_cov, dtype=float)
            if cov.shape != (k, k) or not np.allclose(cov, cov.T) or np.any(np.linalg.eigvalsh(cov) <= 0):
                raise DesignError(f"field 'prior_cov': give a symmetric positive definite {k} x {k} matrix")
        if self.weights is not None and (np.shape(self.weights) != (k,) or np.any(np.asarray(self.weights) < 0)):
            raise DesignError(f"field 'weights': give {k} non-negative numbers")
        if self.content not in ("heuristic", "shadow"):
            raise DesignError(f"field 'content': {self.content!r}; use 'heuristic' or 'shadow'")
        if not 0 < self.shadow_time_limit <= 3600:
            raise DesignError(f"field 'shadow_time_limit': {self.shadow_time_limit!r} seconds; use (0, 3600]")
        if self.randomesque < 1:
            raise DesignError("field 'randomesque': at least 1")
        for name in ("se_target", "trace_target", "det_target"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise DesignError(f"field {name!r}: must be positive, got {v!r}")
        ids = set(bank.item_ids)
        unknown = (sorted(set(self.domains) - ids) + sorted({i for s in self.enemies for i in s} - ids)
                   + sorted(set(self.exposure) - ids))
        if unknown:
            raise DesignError(f"fields 'domains'/'enemies'/'exposure': items {unknown[:5]} are not in the bank")
        if set(self.pretest) - ids:
            raise DesignError(f"field 'pretest': items {sorted(set(self.pretest) - ids)[:5]} are not in the bank")
        if set(self.pretest) & (set(self.domains) | set(self.exposure)):
            raise DesignError("field 'pretest': pretest items are unscored; do not list them in 'domains' or "
                              "'exposure'")
        if not 0 <= self.pretest_count <= len(self.pretest):
            raise DesignError(f"field 'pretest_count': {self.pretest_count} pretest items per test, but "
                              f"{len(self.pretest)} are listed in 'pretest'")
        if self.pretest_count and len(bank) - len(self.pretest) < self.max_items:
            raise DesignError(f"fields 'pretest'/'max_items': {len(bank) - len(self.pretest)} scored items for a "
                              f"test of up to {self.max_items}")
        bad_k = {i: k for i, k in self.exposure.items() if not 0.0 <= float(k) <= 1.0}
        if bad_k:
            raise DesignError(f"field 'exposure': Sympson-Hetter parameters must be in [0, 1]; got {bad_k}")
        names = set(self.domains.values())
        for dom, low in self.domain_min.items():
            pool = sum(1 for d in self.domains.values() if d == dom)
            if dom not in names:
                raise DesignError(f"field 'domain_min': {dom!r} is not a domain of the design's 'domains'")
            if not 0 <= int(low) <= min(pool, int(self.domain_max.get(dom, self.max_items))):
                raise DesignError(f"field 'domain_min': {dom!r} needs {low} items but has {pool} in the bank and a "
                                  f"maximum of {self.domain_max.get(dom, self.max_items)}")
        if sum(int(v) for v in self.domain_min.values()) > self.max_items:
            raise DesignError(f"field 'domain_min': the minima add up to {sum(self.domain_min.values())}, more than "
                              f"max_items {self.max_items}")
