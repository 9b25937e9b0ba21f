"""A design compiled against a bank: everything the rules read and nothing they change.

:class:`CatContext` is built once per (design, bank) by :meth:`CatContext.compile`, which also
checks that the bank can deliver the design. It holds the θ grid and the grid tables, the
prior, the item pools, blueprint bounds, the enemy table and the row layout the posterior
update uses. Rules (:mod:`~adaptive.cat.start`, :mod:`~adaptive.cat.selection`,
:mod:`~adaptive.cat.exposure`, :mod:`~adaptive.cat.stopping`) take a context and a
:class:`~adaptive.cat.state.BatchState`; they never see the engine.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..bank import STATUSES, GridTables, ItemArrays, ItemBank, theta_grid
from ..exceptions import DesignError, DesignWarning
from ..irt.registry import Family
from ..scoring import estimate_ability
from ..scoring.estimators import normal_log_prior
from ..scoring.scale import pass_probability
from .constraints import BlueprintBounds, Feasibility, enemy_table, feasible_test
from .design import ExamDesign

__all__ = ["CatContext"]


@dataclass(frozen=True, eq=False)
class CatContext:
    """Immutable tables of a design compiled against a bank.

    Attributes
    ----------
    design, bank, arrays : the design, the bank and its struct-of-arrays form
    grid : ``(Q,)`` θ points; tables : :class:`~adaptive.bank.GridTables` on them
    log_prior : ``(Q,)`` log prior density on the grid plus ``log_weights``
    log_weights : ``(Q,)`` log quadrature weights (0; log 1/2 at the ends for the trapezoid rule)
    operational, pretest : ``(I,)`` bool -- scored and pretest pools
    in_blueprint : ``(I,)`` bool -- items in a blueprint domain (all items without a blueprint)
    difficulty : ``(I,)`` -- b, or the mean threshold of a polytomous item
    enemies : ``(I, E)`` -- padded enemy table (-1 padding)
    blueprint : :class:`~adaptive.cat.constraints.BlueprintBounds` or None
    max_positions : int -- scored maximum plus pretest items
    cut : float or None -- θ cut
    start_ids : ``(S,)`` -- bank indices of the design's named start items
    lp_rows : ``(K * I, Q)`` -- row ``k * I + i`` is log P_ik on the grid (the posterior update)
    centre, powers : grid centre and ``(Q, 3)`` powers of the centred grid (EAP moments)
    needs_responses : bool -- an estimator rescoring the response matrix (MAP/ML/WLE) is used
    """

    design: ExamDesign
    bank: ItemBank
    arrays: ItemArrays
    grid: np.ndarray
    tables: GridTables
    log_prior: np.ndarray
    log_weights: np.ndarray
    operational: np.ndarray
    pretest: np.ndarray
    in_blueprint: np.ndarray
    difficulty: np.ndarray
    enemies: np.ndarray
    blueprint: BlueprintBounds | None
    max_positions: int
    cut: float | None
    start_ids: np.ndarray
    lp_rows: np.ndarray
    centre: float
    powers: np.ndarray
    needs_responses: bool

    @classmethod
    def compile(cls, design: ExamDesign, bank: ItemBank) -> CatContext:
        """Compile and check; raises :class:`~adaptive.exceptions.DesignError` with every reason."""
        if not isinstance(design, ExamDesign):
            design = ExamDesign.model_validate(design)
        arrays = bank.compile()
        est = design.estimator
        grid = theta_grid(tuple(est.grid))
        tables = arrays.tables(tuple(est.grid))
        blueprint = None
        if design.content.method != "none":
            bp = design.content.blueprint or bank.blueprint
            if bp is not None:
                blueprint = BlueprintBounds.build(bp, [it.domain for it in bank.items])
        k_max = arrays.max_categories
        log_weights = np.zeros(grid.size)
        if est.quadrature == "trapezoid":
            log_weights[[0, -1]] = np.log(0.5)
        centre = 0.5 * (grid[0] + grid[-1])
        t = grid - centre
        ctx = cls(
            design=design,
            bank=bank,
            arrays=arrays,
            grid=grid,
            tables=tables,
            log_prior=normal_log_prior(grid, est.prior_mean, est.prior_sd) + log_weights,
            log_weights=log_weights,
            operational=arrays.status == STATUSES.index("operational"),
            pretest=arrays.status == STATUSES.index("pretest"),
            in_blueprint=np.ones(arrays.n_items, bool) if blueprint is None else blueprint.item_domain >= 0,
            difficulty=np.nanmean(arrays.thresholds, axis=1),
            enemies=enemy_table(arrays.n_items, arrays.enemy_pairs),
            blueprint=blueprint,
            max_positions=design.max_length + design.pretest_items,
            cut=design.theta_cut,
            start_ids=np.array([bank.index[i] for i in design.start.item_ids if i in bank.index], dtype=np.int64),
            lp_rows=np.ascontiguousarray(np.moveaxis(tables.log_prob, 2, 0).reshape(k_max * arrays.n_items, -1)),
            centre=float(centre),
            powers=np.stack([np.ones_like(t), t, t * t], axis=1),
            needs_responses=est.interim != "eap" or est.final != "eap",
        )
        ctx.check_deliverable()
        return ctx

    # ------------------------------------------------------------------ pools
    @property
    def scored_pool(self) -> np.ndarray:
        """Operational items in the blueprint, ``(I,)`` bool."""
        return self.operational & self.in_blueprint

    def items_left(self, excluded: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Scored-pool items left once ``excluded`` ``(N, I)`` bool are taken out: in all ``(N,)`` and per
        blueprint domain ``(N, K)`` (None without a blueprint)."""
        left = self.scored_pool[None, :] & ~excluded
        if self.blueprint is None:
            return left.sum(axis=1), None
        in_domain = self.blueprint.item_domain[:, None] == np.arange(self.blueprint.n_domains)[None, :]  # (I, K)
        return left.sum(axis=1), left.astype(np.int64) @ in_domain.astype(np.int64)

    def item_groups(self) -> list[np.ndarray]:
        """Item groups selection searches: 0 = the whole scored pool, 1 + d = blueprint domain d."""
        groups = [np.flatnonzero(self.scored_pool)]
        if self.blueprint is not None:
            groups += [np.flatnonzero(self.operational & (self.blueprint.item_domain == d))
                       for d in range(self.blueprint.n_domains)]
        return groups

    @property
    def is_3pl(self) -> bool:
        """Every operational item is dichotomous with upper asymptote 1 (the closed-form information)."""
        a, pool = self.arrays, self.operational
        return bool(np.all(a.family[pool] == Family.DICHOTOMOUS) and np.all(a.d[pool] == 1.0))

    # ------------------------------------------------------------------ model quantities
    def information_at(self, theta) -> np.ndarray:
        """Exact information of every item at each θ, ``(n, I)``."""
        a = self.arrays
        theta = np.asarray(theta, dtype=float)
        if np.all(a.family == Family.DICHOTOMOUS) and np.all(a.d == 1.0):
            from ..irt.dichotomous import information_3pl

            return information_3pl(theta[:, None], a.a, a.thresholds[:, 0], a.c)
        return a.information(theta)

    def posterior(self, log_post: np.ndarray) -> np.ndarray:
        """Normalized posterior weights on the grid from unnormalized log-posteriors ``(n, Q)``."""
        w = np.exp(log_post - log_post.max(axis=1, keepdims=True))
        return w / w.sum(axis=1, keepdims=True)

    def likelihood_weights(self, log_post: np.ndarray) -> np.ndarray:
        """Likelihood of the answers so far on the grid, times the quadrature weights, max 1 per row ``(n, Q)``."""
        ll = log_post - (self.log_prior - self.log_weights)
        return np.exp(ll - ll.max(axis=1, keepdims=True))

    def eap_moments(self, log_post: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and SD on the grid from unnormalized log-posteriors ``(n, Q)``."""
        w = np.exp(log_post - log_post.max(axis=1, keepdims=True))
        mom = w @ self.powers  # (n, 3): sum w, sum w t, sum w t^2 (t centred on the grid)
        m1 = mom[:, 1] / mom[:, 0]
        var = mom[:, 2] / mom[:, 0] - m1 * m1
        return m1 + self.centre, np.sqrt(np.maximum(var, 0.0))

    def point_estimate(self, responses: np.ndarray, method: str):
        """MAP/ML/WLE (or EAP on the rescored matrix) of the rows of ``responses``."""
        e = self.design.estimator
        return estimate_ability(self.arrays, responses, method, prior_mean=e.prior_mean, prior_sd=e.prior_sd,
                                grid=tuple(e.grid), bounds=tuple(e.bounds))

    def p_pass(self, log_post: np.ndarray) -> np.ndarray | None:
        """P(θ ≥ θcut) from unnormalized log-posteriors ``(n, Q)``; None without a cut."""
        if self.cut is None:
            return None
        return pass_probability(theta_cut=self.cut, log_posterior=log_post - log_post.max(axis=1, keepdims=True),
                                grid=self.grid)

    # ------------------------------------------------------------------ deliverability
    def check_deliverable(self, excluded: np.ndarray | None = None) -> None:
        """Raise :class:`~adaptive.exceptions.DesignError` listing every reason the bank cannot deliver the design
        (with ``excluded`` ``(I,)`` bool: from the items left once those are taken out, e.g. for a retake)."""
        d, a, bank = self.design, self.arrays, self.bank
        problems = []
        pool = self.scored_pool if excluded is None else self.scored_pool & ~excluded
        bp = self.blueprint
        n_left, per_domain = self.items_left(~pool[None, :])
        if n_left[0] < d.max_length:
            problems.append(f"max_length {d.max_length} needs that many operational items"
                            f"{' in blueprint domains' if bp is not None else ''}; the bank has {int(n_left[0])}")
        if d.pretest_items and self.pretest.sum() < d.pretest_items:
            problems.append(f"pretest_items {d.pretest_items} needs that many pretest items; the bank has "
                            f"{int(self.pretest.sum())}")
        missing = [i for i in d.start.item_ids if i not in bank.index]
        if missing:
            problems.append(f"start.item_ids {missing} are not in the bank")
        n_strata = len(d.exposure.strata) + 1
        wrong = [it.id for it in bank.items if it.exposure_conditional is not None
                 and len(it.exposure_conditional) != n_strata]
        if d.exposure.strata and wrong:
            problems.append(f"exposure.strata makes {n_strata} θ strata, but items {wrong[:5]} have "
                            "exposure_conditional of another length; give one parameter per stratum")
        if d.selection.rule == "a_stratified" and d.selection.strata > d.max_length:
            problems.append(f"selection.strata {d.selection.strata} exceeds max_length {d.max_length}")
        lo = hi = None
        if bp is not None:
            lo, hi = bp.bounds(d.max_length)
            assert per_domain is not None
            for k, name in enumerate(bp.names):
                have = int(per_domain[0, k])
                if have < lo[k]:
                    holds = "the bank has" if excluded is None else "what is left has"
                    problems.append(f"blueprint domain {name!r} needs at least {lo[k]} items in a {d.max_length}-item "
                                    f"test; {holds} {have} operational items in it")
            if np.minimum(hi, d.max_length).sum() < d.max_length:
                problems.append(f"the blueprint's upper bounds allow at most {int(np.minimum(hi, d.max_length).sum())} "
                                f"items, fewer than max_length {d.max_length}")
        if not problems and (bp is not None or a.enemy_pairs.size):
            dom = bp.item_domain if bp is not None else np.zeros(a.n_items, int)
            found = feasible_test(pool, dom, lo, hi, d.max_length, a.enemy_pairs)
            if found is Feasibility.INFEASIBLE:
                problems.append(f"no {d.max_length}-item test from the operational items meets the blueprint and the "
                                f"{a.enemy_pairs.shape[0]} enemy pairs together; relax them or add items")
            elif found is Feasibility.UNKNOWN:
                warnings.warn(f"design {d.name!r} with bank {bank.name!r}: the solver could not show within its time "
                              f"limit that a {d.max_length}-item test meets the blueprint and the enemy pairs; "
                              "tests may stop early with pool_exhausted", DesignWarning, stacklevel=3)
        if problems:
            left = "" if excluded is None else f" once the {int(excluded.sum())} excluded items are taken out"
            raise DesignError(f"design {d.name!r} cannot be met with bank {bank.name!r}{left}:\n  - "
                              + "\n  - ".join(problems))

    def exclusion_mask(self, exclude, n: int) -> np.ndarray:
        """``(n, I)`` bool of items the ``n`` sessions may not be given: ``exclude`` is a list of item ids (the
        same for every session), a list of ``n`` such lists, or an ``(n, I)`` / ``(I,)`` bool array."""
        index = self.bank.index
        if isinstance(exclude, np.ndarray) and exclude.dtype == bool:
            mask = np.broadcast_to(exclude, (n, self.arrays.n_items)).copy()
            return mask
        seq = list(exclude)
        per_session = bool(seq) and all(isinstance(e, (list, tuple, set, frozenset)) for e in seq)
        lists = seq if per_session else [seq] * n
        if len(lists) != n:
            raise DesignError(f"exclude gives {len(lists)} lists of item ids for {n} sessions")
        unknown = sorted({str(i) for ids in lists for i in ids if i not in index})
        if unknown:
            raise DesignError(f"exclude names items that are not in bank {self.bank.name!r}: {unknown[:10]}")
        mask = np.zeros((n, self.arrays.n_items), dtype=bool)
        rows = np.repeat(np.arange(n), [len(ids) for ids in lists])
        cols = np.array([index[i] for ids in lists for i in ids], dtype=np.int64)
        mask[rows, cols] = True
        return mask
