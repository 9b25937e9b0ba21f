"""The batch engine: N sessions in lock step, one code path for simulations and live sessions.

A :class:`CatEngine` holds what a design and a bank fix (grid tables, the
exact-MFI index, blueprint bounds, enemy table); a :class:`BatchState` holds
what changes (administered masks, log-posteriors, θ̂, counts). The loop is::

    state = engine.start(keys)
    while state.active.any():
        items = engine.select(state)               # (N,), -1 where inactive
        rows = np.flatnonzero(items >= 0)
        engine.record(state, rows, items[rows], answers, seconds)

A live :class:`~adaptive.cat.session.Session` is a batch of one going through
the same ``select`` and ``record``. A stopped session stays stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..bank import ItemBank, theta_grid
from ..exceptions import DesignError
from ..irt import mixed
from ..scoring import estimate_ability
from ..scoring.estimators import normal_log_prior
from ..scoring.scale import pass_probability
from ._streams import uniforms
from .constraints import BlueprintBounds, enemy_table, feasible_test, shadow_test
from .design import ExamDesign
from .selection import MFIIndex, a_strata, criterion, info_3pl, mean_difficulty

__all__ = ["CatEngine", "BatchState", "CatResult", "RULE_NAMES", "DECISION_NAMES"]

#: codes of the rule that ended a test
RULE_NAMES = ("", "max_length", "se_target", "classification", "sprt", "time_limit", "pool_exhausted")
(_NONE, _MAX, _SE, _CI, _SPRT, _TIME, _POOL) = range(7)
#: decision codes: -1 no decision, 0 fail, 1 pass
DECISION_NAMES = {-1: "no decision", 0: "fail", 1: "pass"}
_OPERATIONAL, _PRETEST = 0, 1


@dataclass
class BatchState:
    """Mutable state of N sessions (arrays over sessions, items and grid points)."""

    keys: np.ndarray
    theta: np.ndarray
    se: np.ndarray
    log_post: np.ndarray
    administered: np.ndarray
    blocked: np.ndarray
    responses: np.ndarray | None  # (N, I) scored answers, NaN elsewhere; kept for MAP/ML/WLE only
    pretest_responses: np.ndarray | None  # (N, I) pretest answers; only when the design has pretest items
    counts: np.ndarray
    n_scored: np.ndarray
    n_given: np.ndarray
    active: np.ndarray
    rule: np.ndarray
    decision: np.ndarray
    sequence: np.ndarray
    seq_response: np.ndarray
    seq_pretest: np.ndarray
    theta_path: np.ndarray
    se_path: np.ndarray
    llr: np.ndarray
    elapsed: np.ndarray
    pretest_slot: np.ndarray
    start_items: np.ndarray
    exposure_counts: np.ndarray
    n_sessions: int = 1
    final_theta: np.ndarray = field(default=None)
    final_se: np.ndarray = field(default=None)

    @property
    def n(self) -> int:
        return self.keys.size


@dataclass(frozen=True)
class CatResult:
    """Results of N adaptive tests (arrays over simulees; item sequences 0-based bank indices).

    ``sequence[n, t]`` is the t-th item given (-1 after the end), ``scored[n, t]`` is False
    for pretest items, ``response[n, t]`` the answer, ``theta_path``/``se_path`` the interim
    estimate after each item.
    """

    theta: np.ndarray
    se: np.ndarray
    scaled: np.ndarray | None
    p_pass: np.ndarray | None
    decision: np.ndarray
    rule: np.ndarray
    n_items: np.ndarray
    sequence: np.ndarray
    scored: np.ndarray
    response: np.ndarray
    theta_path: np.ndarray
    se_path: np.ndarray
    item_ids: tuple[str, ...] = field(repr=False, default=())

    def __len__(self) -> int:
        return self.theta.size

    def items_of(self, n: int, scored_only: bool = True) -> np.ndarray:
        """Bank indices of the items simulee ``n`` took, in order."""
        seq = self.sequence[n]
        keep = seq >= 0
        if scored_only:
            keep &= self.scored[n]
        return seq[keep]

    def summary(self) -> str:
        n = len(self)
        lines = [f"{n} adaptive test(s): mean length {self.n_items.mean():.2f} "
                 f"(min {self.n_items.min()}, max {self.n_items.max()})",
                 f"  theta mean {self.theta.mean():.4f}, mean SE {self.se.mean():.4f}"]
        dec, cnt = np.unique(self.decision, return_counts=True)
        lines.append("  decisions: " + ", ".join(f"{d} {c}" for d, c in zip(dec, cnt)))
        rules, cnt = np.unique(self.rule, return_counts=True)
        lines.append("  stopped by: " + ", ".join(f"{r} {c}" for r, c in zip(rules, cnt)))
        return "\n".join(lines)


class CatEngine:
    """A design compiled against a bank. Building it checks that the design can be met.

    Parameters
    ----------
    design : ExamDesign
    bank : ItemBank

    Raises
    ------
    DesignError
        with the reason, when the bank cannot deliver the design.
    """

    def __init__(self, design: ExamDesign, bank: ItemBank):
        if not isinstance(design, ExamDesign):
            design = ExamDesign.model_validate(design)
        self.design = design
        self.bank = bank
        arrays = bank.compile()
        self.arrays = arrays
        est = design.estimator
        self.grid = theta_grid(tuple(est.grid))
        self.tables = arrays.tables(tuple(est.grid))
        self.log_prior = normal_log_prior(self.grid, est.prior_mean, est.prior_sd)
        self.scored_pool = arrays.status == _OPERATIONAL
        self.pretest_pool = arrays.status == _PRETEST
        self.difficulty = mean_difficulty(arrays)
        self.enemies = enemy_table(arrays.n_items, arrays.enemy_pairs)
        self.max_len = design.max_length + design.pretest_items
        self.cut = design.theta_cut
        blueprint = None
        if design.content.method != "none":
            blueprint = design.content.blueprint or bank.blueprint
        self.bp = BlueprintBounds.build(blueprint, [it.domain for it in bank.items]) if blueprint else None
        self.strata = (a_strata(arrays.a, self.difficulty, design.selection.strata)
                       if design.selection.rule == "a_stratified" else None)
        self.sprt_table = None
        if design.stopping.sprt is not None:
            dlt = design.stopping.sprt.delta
            lp = arrays.terms(np.array([self.cut + dlt, self.cut - dlt])).log_prob  # (2, I, K)
            self.sprt_table = lp[0] - lp[1]
            s = design.stopping.sprt
            self.sprt_upper = np.log((1 - s.beta) / s.alpha)
            self.sprt_lower = np.log(s.beta / (1 - s.alpha))
        self.start_ids = np.array([bank.index[i] for i in design.start.item_ids if i in bank.index], dtype=int)
        self._check()
        self.mfi_index = self._build_mfi_index()
        # the (N, I) response matrix is kept only for estimators that rescore it (MAP/ML/WLE)
        self._needs_responses = est.interim != "eap" or est.final != "eap"
        k_max = arrays.max_categories
        #: log P rows by (category, item): row k * I + i is log P_ik on the grid
        self._lp_rows = np.ascontiguousarray(np.moveaxis(self.tables.log_prob, 2, 0).reshape(k_max * arrays.n_items, -1))
        self._centre = 0.5 * (self.grid[0] + self.grid[-1])
        t = self.grid - self._centre
        self._powers = np.stack([np.ones_like(t), t, t * t], axis=1)
        self._b = np.ascontiguousarray(arrays.thresholds[:, 0])
        #: extra window width of the exact-MFI search (speed only: results do not depend on it)
        self.window_margin = 8

    # ------------------------------------------------------------------ set-up
    def _groups(self):
        groups = [np.flatnonzero(self.scored_pool & self._in_blueprint())]
        if self.bp is not None:
            groups += [np.flatnonzero(self.scored_pool & (self.bp.item_domain == d)) for d in range(self.bp.n_domains)]
        return groups

    def _in_blueprint(self):
        return np.ones(self.arrays.n_items, bool) if self.bp is None else self.bp.item_domain >= 0

    def _build_mfi_index(self):
        d = self.design
        if d.selection.rule not in ("mfi", "mfi_cut") or d.content.method == "shadow":
            return None
        a = self.arrays
        pool = self.scored_pool
        if not (np.all(a.family[pool] == mixed.DICHOTOMOUS) and np.all(a.d[pool] == 1.0)):
            return None  # information of 4PL / polytomous items is evaluated exactly for every item
        lo = min(self.grid[0], d.estimator.bounds[0], d.start.low, d.start.theta) - 0.5
        hi = max(self.grid[-1], d.estimator.bounds[1], d.start.high, d.start.theta) + 0.5
        return MFIIndex.build(a.a, a.thresholds[:, 0], a.c, self._groups(), lo, hi)

    def _check(self):
        d, a = self.design, self.arrays
        problems = []
        pool = self.scored_pool & self._in_blueprint()
        if pool.sum() < d.max_length:
            problems.append(f"max_length {d.max_length} needs that many operational items"
                            f"{' in blueprint domains' if self.bp is not None else ''}; the bank has {int(pool.sum())}")
        if d.pretest_items and self.pretest_pool.sum() < d.pretest_items:
            problems.append(f"pretest_items {d.pretest_items} needs that many pretest items; the bank has "
                            f"{int(self.pretest_pool.sum())}")
        missing = [i for i in d.start.item_ids if i not in self.bank.index]
        if missing:
            problems.append(f"start.item_ids {missing} are not in the bank")
        n_strata = len(d.exposure.strata) + 1
        wrong = [it.id for it in self.bank.items if it.exposure_conditional is not None
                 and len(it.exposure_conditional) != n_strata]
        if d.exposure.strata and wrong:
            problems.append(f"exposure.strata makes {n_strata} θ strata, but items {wrong[:5]} have "
                            "exposure_conditional of another length; give one parameter per stratum")
        if d.selection.rule == "a_stratified" and d.selection.strata > d.max_length:
            problems.append(f"selection.strata {d.selection.strata} exceeds max_length {d.max_length}")
        lo = hi = None
        if self.bp is not None:
            lo, hi = self.bp.bounds(d.max_length)
            for k, name in enumerate(self.bp.names):
                have = int(np.sum(pool & (self.bp.item_domain == k)))
                if have < lo[k]:
                    problems.append(f"blueprint domain {name!r} needs at least {lo[k]} items in a {d.max_length}-item "
                                    f"test; the bank has {have} operational items in it")
            if np.minimum(hi, d.max_length).sum() < d.max_length:
                problems.append(f"the blueprint's upper bounds allow at most {int(np.minimum(hi, d.max_length).sum())} "
                                f"items, fewer than max_length {d.max_length}")
        if not problems and (self.bp is not None or a.enemy_pairs.size):
            dom = self.bp.item_domain if self.bp is not None else np.zeros(a.n_items, int)
            if not feasible_test(pool, dom, lo, hi, d.max_length, a.enemy_pairs):
                problems.append(f"no {d.max_length}-item test from the operational items meets the blueprint and the "
                                f"{a.enemy_pairs.shape[0]} enemy pairs together; relax them or add items")
        if problems:
            raise DesignError(f"design {d.name!r} cannot be met with bank {self.bank.name!r}:\n  - "
                              + "\n  - ".join(problems))

    # ------------------------------------------------------------------ state
    def start(self, keys, blocked=None, exposure_counts=None, n_sessions=None) -> BatchState:
        """A fresh state for sessions with ``keys`` (see :mod:`adaptive.cat._streams`)."""
        keys = np.asarray(keys, dtype=np.uint64).ravel()
        n, n_items, _q = keys.size, self.arrays.n_items, self.grid.size
        d = self.design
        L = self.max_len
        st = d.start
        if st.kind == "random_theta":
            theta0 = st.low + (st.high - st.low) * uniforms(keys, 0, "start")
        else:
            theta0 = np.full(n, float(st.theta))
        slots = np.zeros((n, L), dtype=bool)
        if d.pretest_items:
            window = d.min_length + d.pretest_items - 1  # all pretest items come before the earliest stop
            u = uniforms(keys, 0, "pretest_positions", width=window)
            pos = np.argsort(u, axis=1)[:, : d.pretest_items]
            np.put_along_axis(slots, pos, True, axis=1)
        start_items = np.full((n, st.n_items if st.kind == "items" else 0), -1, dtype=np.int64)
        if st.kind == "items":
            if self.start_ids.size:
                if st.shuffle:
                    u = uniforms(keys, 0, "start_items", width=self.start_ids.size)
                    start_items[:] = self.start_ids[np.argsort(u, axis=1)[:, : st.n_items]]
                else:
                    start_items[:] = self.start_ids[None, : st.n_items]
            else:
                pool = np.flatnonzero(self.scored_pool & self._in_blueprint())
                near = pool[np.argsort(np.abs(self.difficulty[pool] - st.theta), kind="stable")[: max(st.window, st.n_items)]]
                u = uniforms(keys, 0, "start_items", width=near.size)
                start_items[:] = near[np.argsort(u, axis=1)[:, : st.n_items]]
        n_dom = self.bp.n_domains if self.bp is not None else 0
        state = BatchState(
            keys=keys,
            theta=theta0,
            se=np.full(n, d.estimator.prior_sd),
            log_post=np.tile(self.log_prior - self.log_prior.max(), (n, 1)),
            administered=np.zeros((n, n_items), dtype=bool),
            blocked=np.zeros((n, n_items), dtype=bool) if blocked is None else np.array(blocked, dtype=bool),
            responses=np.full((n, n_items), np.nan) if self._needs_responses else None,
            pretest_responses=np.full((n, n_items), np.nan) if d.pretest_items else None,
            counts=np.zeros((n, n_dom), dtype=np.int64),
            n_scored=np.zeros(n, dtype=np.int64),
            n_given=np.zeros(n, dtype=np.int64),
            active=np.ones(n, dtype=bool),
            rule=np.zeros(n, dtype=np.int8),
            decision=np.full(n, -1, dtype=np.int8),
            sequence=np.full((n, L), -1, dtype=np.int64),
            seq_response=np.full((n, L), np.nan),
            seq_pretest=np.zeros((n, L), dtype=bool),
            theta_path=np.full((n, L), np.nan),
            se_path=np.full((n, L), np.nan),
            llr=np.zeros(n),
            elapsed=np.zeros(n),
            pretest_slot=slots,
            start_items=start_items,
            exposure_counts=np.zeros(n_items, dtype=np.int64) if exposure_counts is None
            else np.array(exposure_counts, dtype=np.int64),
            n_sessions=int(n if n_sessions is None else n_sessions),
        )
        state.final_theta = state.theta.copy()
        state.final_se = state.se.copy()
        return state

    # ------------------------------------------------------------------ selection
    def information_at(self, theta) -> np.ndarray:
        """Exact item information at each θ, ``(n, I)``."""
        a = self.arrays
        theta = np.asarray(theta, dtype=float)
        if np.all(a.family == mixed.DICHOTOMOUS) and np.all(a.d == 1.0):
            return info_3pl(theta[:, None], a.a, a.thresholds[:, 0], a.c)
        return a.information(theta)

    def _item_ok(self, state) -> np.ndarray:
        ok = self.scored_pool & self._in_blueprint()
        r = self.design.exposure.max_rate
        if r is not None:
            ok = ok & (state.exposure_counts < r * max(state.n_sessions, 1))
        return ok

    def _eligible(self, state, rows, group, item_ok):
        e = ~state.blocked[rows] & item_ok[None, :]
        if self.bp is not None:
            g = np.asarray(group)
            e &= (g[:, None] == 0) | (self.bp.item_domain[None, :] == g[:, None] - 1)
        return e

    def _choose(self, crit, elig, keys, step, k):
        """Best eligible item per row (ties to the lower index) or a draw among the k best; -1 if none."""
        crit = np.where(elig, crit, -np.inf)
        if k == 1:
            best = np.argmax(crit, axis=1)
            found = np.isfinite(crit[np.arange(crit.shape[0]), best])
            return np.where(found, best, -1)
        order = np.argsort(-crit, axis=1, kind="stable")[:, :k]
        top = np.take_along_axis(crit, order, axis=1)
        m = np.isfinite(top).sum(axis=1)
        pick = np.minimum((uniforms(keys, step, "randomesque") * np.maximum(m, 1)).astype(int), np.maximum(m - 1, 0))
        return np.where(m > 0, order[np.arange(order.shape[0]), pick], -1)

    def _mfi_window(self, state, rows, group, k, item_ok, step):
        """Exact MFI through the bound index; returns (items, decided)."""
        idx = self.mfi_index
        a = self.arrays
        theta = state.theta[rows] if self.design.selection.rule == "mfi" else np.full(rows.size, self.cut)
        cell = idx.cell(theta)
        cell_c = np.maximum(cell, 0)
        width = idx.order.shape[2]
        L = int(min(width, int(state.n_given[rows].max(initial=0)) + 2 * k + self.window_margin))
        n_cells = idx.n_cells
        base = (group * n_cells + cell_c) * width
        cand = np.take(idx.order, base[:, None] + np.arange(L)[None, :])  # flat takes: cheaper than fancy indexing
        nxt = np.take(idx.bound, (group * n_cells + cell_c) * (width + 1) + L)
        valid = cand >= 0
        cc = np.where(valid, cand, 0)
        n_items = a.n_items
        elig = valid & ~np.take(state.blocked, (rows * n_items)[:, None] + cc)
        if self.design.exposure.max_rate is not None:
            elig &= item_ok[cc]
        whole = ~np.isfinite(nxt)  # the window holds every item of the group
        if k == 1:
            # exact information for the first M eligible items of the window only; the (M+1)-th
            # eligible item's bound (or the bound past the window) bounds every other item
            M = 4
            r_idx, c_idx = np.nonzero(elig)  # row-major: each row's eligible positions in window order
            n_el = np.bincount(r_idx, minlength=rows.size)
            first = np.concatenate([[0], np.cumsum(n_el)[:-1]])
            j = np.arange(M + 1)
            have = j[None, :] < n_el[:, None]
            pos = np.where(have, c_idx[np.minimum(first[:, None] + j[None, :], max(c_idx.size - 1, 0))]
                           if c_idx.size else 0, L)
            pc = np.minimum(pos, L - 1)
            ci = np.take_along_axis(cc, pc[:, :M], axis=1)
            val = np.where(have[:, :M], info_3pl(theta[:, None], np.take(a.a, ci), np.take(self._b, ci),
                                                 np.take(a.c, ci)), -np.inf)
            bound_rest = np.where(have[:, M], np.take(idx.bound, ((group * n_cells + cell_c) * (width + 1))[:, None]
                                                      + pc[:, M:]).ravel(), nxt)
            best = val.max(axis=1)
            big = np.iinfo(np.int64).max
            items = np.where(val == best[:, None], ci, big).min(axis=1)  # ties to the lower index
            found = np.isfinite(best)
            items = np.where(found, items, -1)
            exhausted = ~found & whole  # no eligible item in the whole group
            decided = (cell >= 0) & (exhausted | (found & (best > bound_rest)))
            return items, decided
        val = np.where(elig, info_3pl(theta[:, None], np.take(a.a, cc), np.take(self._b, cc), np.take(a.c, cc)),
                       -np.inf)
        # randomesque: order the window by item index (ties to the lower index), then by value
        by_index = np.argsort(np.where(valid, cc, np.iinfo(np.int64).max), axis=1, kind="stable")
        cc = np.take_along_axis(cc, by_index, axis=1)
        val = np.take_along_axis(val, by_index, axis=1)
        kk = min(k, L)
        order = np.argsort(-val, axis=1, kind="stable")[:, :kk]
        top = np.take_along_axis(val, order, axis=1)
        m = np.isfinite(top).sum(axis=1)
        decided = (cell >= 0) & (whole | ((m == kk) & (top[:, -1] > nxt)))
        u = uniforms(state.keys[rows], step, "randomesque")
        pick = np.minimum((u * np.maximum(m, 1)).astype(int), np.maximum(m - 1, 0))
        items = np.where(m > 0, np.take_along_axis(cc, order, axis=1)[np.arange(rows.size), pick], -1)
        return items, decided

    def _select_scored(self, state, rows, group, step):
        d = self.design
        k = d.exposure.randomesque
        item_ok = self._item_ok(state)
        items = np.full(rows.size, -1, dtype=np.int64)
        todo = np.ones(rows.size, dtype=bool)
        if self.mfi_index is not None:
            items, decided = self._mfi_window(state, rows, group, k, item_ok, step)
            todo = ~decided
        if todo.any():
            sub = rows[todo]
            elig = self._eligible(state, sub, group[todo], item_ok)
            if d.content.method == "shadow" and self.bp is not None:
                items[todo] = self._shadow(state, sub, elig, step[todo])
            else:
                crit = criterion(self, state, sub)
                items[todo] = self._choose(crit, elig, state.keys[sub], step[todo], k)
        return items

    def _shadow(self, state, rows, elig, step):
        d = self.design
        lo, hi = self.bp.bounds(d.max_length)
        crit = criterion(self, state, rows)
        out = np.full(rows.size, -1, dtype=np.int64)
        scored_given = state.administered[rows] & self.scored_pool[None, :]
        for j, r in enumerate(rows):  # one MILP per session: the shadow test is sequential by nature
            value = np.where(np.isfinite(crit[j]), crit[j], 0.0)
            value = value - value.min() + 1e-9
            test = shadow_test(value, scored_given[j], self._shadow_candidates(value, elig[j] & ~scored_given[j],
                                                                               state.counts[r], hi),
                               self.bp.item_domain, lo, hi, d.max_length, self.arrays.enemy_pairs)
            if test is None:
                continue
            free = np.zeros(self.arrays.n_items, dtype=bool)
            free[test] = True
            free &= elig[j] & ~scored_given[j]
            out[j] = self._choose(crit[j : j + 1], free[None, :], state.keys[r : r + 1],
                                  step[j : j + 1],
                                  d.exposure.randomesque)[0]
        return out

    def _shadow_candidates(self, value, free, counts, hi):
        """Free items that can be in an optimal shadow test (the program is then much smaller).

        Within domain d a test holds at most ``hi_d - counts_d`` more items. Keep the best m_d free
        items of the domain, with m_d the smallest number such that at most ``m_d - (hi_d - counts_d)``
        of them have enemies: an optimal test using an item outside the list could swap it for an
        unused enemy-free item of the list of at least its value without breaking any constraint, so
        the optimum over the kept items is the optimum over all items.
        """
        has_enemy = (self.enemies >= 0).any(axis=1) if self.enemies.shape[1] else np.zeros(free.size, bool)
        keep = np.zeros(free.size, dtype=bool)
        dom = self.bp.item_domain
        for k in range(self.bp.n_domains):  # one pass per blueprint domain
            items = np.flatnonzero(free & (dom == k))
            if items.size == 0:
                continue
            items = items[np.argsort(-value[items], kind="stable")]
            room = max(int(hi[k] - counts[k]), 0)
            enemy_count = np.cumsum(has_enemy[items])  # enemy-bearing items among the best m
            m = np.arange(1, items.size + 1)
            ok = m - room >= enemy_count
            m_k = int(m[np.argmax(ok)]) if ok.any() else items.size
            keep[items[:m_k]] = True
        return keep

    def select(self, state: BatchState) -> np.ndarray:
        """Choose the next item of every active session, ``(N,)`` (-1 where inactive).

        Sessions with no eligible item left stop here (rule ``pool_exhausted``).
        """
        d = self.design
        items = np.full(state.n, -1, dtype=np.int64)
        rows = np.flatnonzero(state.active)
        if rows.size == 0:
            return items
        pos = state.n_given[rows]
        pre = state.pretest_slot[rows, np.minimum(pos, self.max_len - 1)]
        if pre.any():
            pr = rows[pre]
            crit = uniforms(state.keys[pr], state.n_given[pr], "pretest_item", width=self.arrays.n_items)
            elig = self.pretest_pool[None, :] & ~state.blocked[pr]
            items[pr] = self._choose(crit, elig, state.keys[pr], state.n_given[pr], 1)
        sc = rows[~pre | (items[rows] < 0)]
        if sc.size:
            items[sc] = self._select_scored_rows(state, sc)
        if d.exposure.sympson_hetter:
            testing = np.flatnonzero(items >= 0)  # each session tests its pick until one is accepted
            for attempt in range(1, self.arrays.n_items + 1):
                testing = testing[items[testing] >= 0]
                scored = testing[self.scored_pool[items[testing]]]
                if scored.size == 0:
                    break
                u = uniforms(state.keys[scored], state.n_given[scored] * 4096 + attempt, "sympson_hetter")
                rejected = scored[u >= self._sh_parameter(state.theta[scored], items[scored])]
                if rejected.size == 0:
                    break
                state.blocked[rejected, items[rejected]] = True  # passed over for the rest of this test
                items[rejected] = self._select_scored_rows(state, rejected, attempt)
                testing = rejected
        gone = rows[items[rows] < 0]
        if gone.size:
            self._stop(state, gone, _POOL)
        return items

    def _sh_parameter(self, theta, items) -> np.ndarray:
        """Sympson–Hetter K of ``items``; conditional on the θ̂ stratum when the design has strata."""
        strata = self.design.exposure.strata
        if not strata:
            return self.arrays.exposure[items]
        table = self.arrays.exposure_conditional
        if table.shape[1] != len(strata) + 1:  # no item has conditional parameters: each keeps its exposure
            return self.arrays.exposure[items]
        return table[items, np.searchsorted(np.asarray(strata), theta, side="right")]

    def _select_scored_rows(self, state, rows, attempt=0):
        d = self.design
        step = state.n_given[rows] * 4096 + attempt
        out = np.full(rows.size, -1, dtype=np.int64)
        # start items
        if state.start_items.shape[1]:
            first = state.n_scored[rows] < state.start_items.shape[1]
            if first.any():
                cand = state.start_items[rows[first], state.n_scored[rows[first]]]
                ok = ~state.blocked[rows[first], cand]
                out[np.flatnonzero(first)[ok]] = cand[ok]
        todo = out < 0
        if not todo.any():
            return out
        r = rows[todo]
        if self.bp is None or d.content.method == "shadow":
            out[todo] = self._select_scored(state, r, np.zeros(r.size, dtype=np.int64), step[todo])
            return out
        pref = self.bp.domain_preference(state.counts[r], state.n_scored[r], d.max_length)
        got = np.full(r.size, -1, dtype=np.int64)
        left = np.ones(r.size, dtype=bool)
        for rank in range(pref.shape[1]):
            dom = pref[:, rank]
            try_ = left & (dom >= 0)
            if not try_.any():
                break
            got[try_] = self._select_scored(state, r[try_], dom[try_] + 1, step[todo][try_])
            left &= got < 0
        out[todo] = got
        return out

    # ------------------------------------------------------------------ recording
    def record(self, state: BatchState, rows, items, responses, seconds=None) -> None:
        """Record the answers ``responses`` of sessions ``rows`` to ``items``, update and check stopping.

        ``responses`` must already be valid categories (the session validates at its edge).
        """
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return
        items = np.asarray(items, dtype=np.int64)
        resp = np.asarray(responses, dtype=float)
        secs = np.broadcast_to(np.asarray(self.design.stopping.seconds_per_item if seconds is None else seconds,
                                          dtype=float), rows.shape)
        pos = state.n_given[rows]
        pre = self.pretest_pool[items] & state.pretest_slot[rows, pos]
        state.sequence[rows, pos] = items
        state.seq_response[rows, pos] = resp
        state.seq_pretest[rows, pos] = pre
        state.administered[rows, items] = True
        state.blocked[rows, items] = True
        if self.enemies.shape[1]:
            en = self.enemies[items]  # (n, deg)
            r2 = np.broadcast_to(rows[:, None], en.shape)
            ok = en >= 0
            state.blocked[r2[ok], en[ok]] = True
        state.exposure_counts += np.bincount(items, minlength=state.exposure_counts.size)
        state.n_given[rows] += 1
        state.elapsed[rows] += secs
        s_rows, s_items, s_resp = rows[~pre], items[~pre], resp[~pre].astype(np.int64)
        p_rows = rows[pre]
        if state.pretest_responses is not None:
            state.pretest_responses[p_rows, items[pre]] = resp[pre]
        if s_rows.size:
            if state.responses is not None:
                state.responses[s_rows, s_items] = s_resp
            state.n_scored[s_rows] += 1
            if self.bp is not None:
                dom = self.bp.item_domain[s_items]
                has = dom >= 0
                np.add.at(state.counts, (s_rows[has], dom[has]), 1)
            state.log_post[s_rows] += np.take(self._lp_rows, s_resp * self.arrays.n_items + s_items, axis=0)
            if self.sprt_table is not None:
                state.llr[s_rows] += self.sprt_table[s_items, s_resp]
            self._update_estimates(state, s_rows, self.design.estimator.interim)
        state.theta_path[rows, pos] = state.theta[rows]
        state.se_path[rows, pos] = state.se[rows]
        self._check_stop(state, rows)

    def _update_estimates(self, state, rows, method):
        if method == "eap":
            m, sd = self._eap_moments(state.log_post[rows])
            state.theta[rows] = m
            state.se[rows] = sd
            return
        est = self._point_estimate(state.responses[rows], method)
        state.theta[rows] = est.theta
        state.se[rows] = est.se

    def _eap_moments(self, log_post):
        """Posterior mean and SD on the grid from unnormalized log-posteriors ``(n, Q)``."""
        w = np.exp(log_post - log_post.max(axis=1, keepdims=True))
        mom = w @ self._powers  # (n, 3): sum w, sum w t, sum w t^2 (t centred on the grid)
        m1 = mom[:, 1] / mom[:, 0]
        var = mom[:, 2] / mom[:, 0] - m1 * m1
        return m1 + self._centre, np.sqrt(np.maximum(var, 0.0))

    def _point_estimate(self, x, method):
        e = self.design.estimator
        return estimate_ability(self.arrays, x, method, prior_mean=e.prior_mean, prior_sd=e.prior_sd,
                                grid=tuple(e.grid), bounds=tuple(e.bounds))

    def _check_stop(self, state, rows):
        d = self.design
        s = d.stopping
        rows = rows[state.active[rows]]
        if rows.size == 0:
            return
        n = state.n_scored[rows]
        theta, se = state.theta[rows], state.se[rows]
        rule = np.zeros(rows.size, dtype=np.int8)
        decision = np.full(rows.size, -2, dtype=np.int8)  # -2: decide by θ̂ against the cut
        can = n >= d.min_length
        if self.bp is not None:
            can &= self.bp.may_stop(state.counts[rows], n)
        if s.classification is not None:
            z = s.classification.z
            up, down = can & (theta - z * se > self.cut), can & (theta + z * se < self.cut)
            hit = (up | down) & (rule == 0)
            rule[hit] = _CI
            decision[hit & up] = 1
            decision[hit & down] = 0
        if self.sprt_table is not None:
            llr = state.llr[rows]
            up, down = can & (llr >= self.sprt_upper), can & (llr <= self.sprt_lower)
            hit = (up | down) & (rule == 0)
            rule[hit] = _SPRT
            decision[hit & up] = 1
            decision[hit & down] = 0
        if s.se_target is not None:
            rule[(rule == 0) & can & (se <= s.se_target)] = _SE
        rule[(rule == 0) & (n >= d.max_length)] = _MAX
        if s.time_limit is not None:
            out = (rule == 0) & (state.elapsed[rows] >= s.time_limit)
            rule[out] = _TIME
            if s.on_timeout == "fail":
                decision[out] = 0
            elif s.on_timeout == "no_decision":
                decision[out] = -1
            else:
                decision[out & (n < d.min_length)] = 0
        stop = rule > 0
        if stop.any():
            self._stop(state, rows[stop], rule[stop], decision[stop])

    def _stop(self, state, rows, rule, decision=None):
        d = self.design
        rows = np.asarray(rows)
        state.active[rows] = False
        state.rule[rows] = rule
        if d.estimator.final == d.estimator.interim:
            state.final_theta[rows], state.final_se[rows] = state.theta[rows], state.se[rows]
        elif d.estimator.final == "eap":
            self._final_eap(state, rows)
        else:
            est = self._point_estimate(state.responses[rows], d.estimator.final)
            state.final_theta[rows], state.final_se[rows] = est.theta, est.se
        if decision is None:
            decision = np.full(rows.size, -2, dtype=np.int8)
            if rule == _POOL:
                decision[state.n_scored[rows] < d.min_length] = -1
        decision = np.asarray(decision, dtype=np.int8)
        by_theta = decision == -2
        if self.cut is None:
            decision = np.full(rows.size, -1, dtype=np.int8)
        else:
            decision = np.where(by_theta, (state.final_theta[rows] >= self.cut).astype(np.int8), decision)
        state.decision[rows] = decision

    def _final_eap(self, state, rows):
        state.final_theta[rows], state.final_se[rows] = self._eap_moments(state.log_post[rows])

    # ------------------------------------------------------------------ results
    def p_pass(self, state, rows=None) -> np.ndarray | None:
        if self.cut is None:
            return None
        lp = state.log_post if rows is None else state.log_post[rows]
        return pass_probability(theta_cut=self.cut, log_posterior=lp - lp.max(axis=1, keepdims=True),
                                grid=self.grid)

    def result(self, state: BatchState) -> CatResult:
        """Results of every session (finished ones final; active ones interim)."""
        d = self.design
        theta = np.where(state.active, state.theta, state.final_theta)
        se = np.where(state.active, state.se, state.final_se)
        scaled = d.scale.to_scaled(theta) if d.scale is not None else None
        names = np.array(["no decision", "fail", "pass"])
        return CatResult(
            theta=theta,
            se=se,
            scaled=scaled,
            p_pass=self.p_pass(state),
            decision=names[state.decision.astype(int) + 1],
            rule=np.array(RULE_NAMES)[state.rule],
            n_items=state.n_scored.copy(),
            sequence=state.sequence.copy(),
            scored=(state.sequence >= 0) & ~state.seq_pretest,
            response=state.seq_response.copy(),
            theta_path=state.theta_path.copy(),
            se_path=state.se_path.copy(),
            item_ids=self.arrays.ids,
        )
