"""The batch engine: N sessions in lock step, one code path for simulations and live sessions.

A :class:`CatEngine` compiles a design against a bank into a
:class:`~adaptive.cat.context.CatContext` (what the design and the bank fix) and builds the
design's rules from the registries: a start rule (:mod:`~adaptive.cat.start`), a selection
rule (:mod:`~adaptive.cat.selection`), exposure control (:mod:`~adaptive.cat.exposure`),
content constraints (:mod:`~adaptive.cat.constraints`) and stopping rules
(:mod:`~adaptive.cat.stopping`). A :class:`~adaptive.cat.state.BatchState` holds what changes.
The engine only orchestrates::

    state = engine.start(keys)
    while state.active.any():
        items = engine.select(state)               # (N,), -1 where inactive
        rows = np.flatnonzero(items >= 0)
        engine.record(state, rows, items[rows], answers, seconds)

A live :class:`~adaptive.cat.session.Session` is a batch of one going through the same
``select`` and ``record``. A stopped session stays stopped.
"""

from __future__ import annotations

import numpy as np

from ..bank import ItemBank
from ._streams import uniforms
from .constraints import shadow_candidates, shadow_test
from .context import CatContext
from .design import ExamDesign
from .exposure import MaxRate, Randomesque, SympsonHetter
from .mfi import MFIIndex, exact_mfi
from .registry import SELECTION_RULES, START_RULES
from .selection import SelectionRule
from .start import pretest_slots
from .state import BatchState, CatResult, Decision, SelectionNote, StopRule
from .stopping import SPRT, TimeLimit, Verdict, build_stopping_rules, final_decision

__all__ = ["CatEngine", "BatchState", "CatResult"]

#: draws per step are keyed by step * STEP_STRIDE + attempt (Sympson-Hetter re-selections)
STEP_STRIDE = 4096


class CatEngine:
    """A design compiled against a bank, with its rules. Building it checks that the design can be met.

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
        ctx = CatContext.compile(design, bank)
        self.ctx = ctx
        self.start_rule = START_RULES[ctx.design.start.kind](ctx)
        self.selection = SELECTION_RULES[ctx.design.selection.rule](ctx)
        self.chooser = Randomesque(ctx.design.exposure.randomesque)
        self.max_rate = MaxRate(ctx.design.exposure.max_rate)
        self.sympson_hetter = SympsonHetter(ctx)
        self.stopping = build_stopping_rules(ctx)
        self.sprt = next((r for r in self.stopping if isinstance(r, SPRT)), None)
        self.shadow = ctx.design.content.method == "shadow" and ctx.blueprint is not None
        self.mfi_index = self._build_mfi_index()
        #: extra window width of the exact-MFI search (speed only: results do not depend on it)
        self.window_margin = 8

    # ------------------------------------------------------------------ the compiled design
    @property
    def design(self) -> ExamDesign:
        return self.ctx.design

    @property
    def bank(self) -> ItemBank:
        return self.ctx.bank

    @property
    def arrays(self):
        return self.ctx.arrays

    @property
    def grid(self) -> np.ndarray:
        return self.ctx.grid

    @property
    def tables(self):
        return self.ctx.tables

    @property
    def bp(self):
        return self.ctx.blueprint

    @property
    def cut(self) -> float | None:
        return self.ctx.cut

    def _build_mfi_index(self) -> MFIIndex | None:
        ctx, d = self.ctx, self.ctx.design
        if self.shadow or not ctx.is_3pl:
            return None  # information of 4PL / polytomous items is evaluated exactly for every item
        if type(self.selection).information_point is SelectionRule.information_point:
            return None  # not a maximum-information rule
        lo = min(ctx.grid[0], d.estimator.bounds[0], d.start.low, d.start.theta) - 0.5
        hi = max(ctx.grid[-1], d.estimator.bounds[1], d.start.high, d.start.theta) + 0.5
        a = ctx.arrays
        return MFIIndex.build(a.a, a.thresholds[:, 0], a.c, ctx.item_groups(), lo, hi)

    # ------------------------------------------------------------------ state
    def start(self, keys, blocked=None, exposure_counts=None, n_sessions=None, time_limit=None) -> BatchState:
        """A fresh state for sessions with ``keys`` (see :mod:`adaptive.cat._streams`).

        ``blocked`` ``(N, I)`` bool marks items a session may never be given (post-hoc cells
        without an answer, items excluded from a retake). ``time_limit`` (scalar or ``(N,)``)
        replaces the design's time limit per session, e.g. scaled by an accommodation.
        """
        ctx = self.ctx
        keys = np.asarray(keys, dtype=np.uint64).ravel()
        n, n_items, L = keys.size, ctx.arrays.n_items, ctx.max_positions
        d = ctx.design
        theta0 = self.start_rule.initial_theta(ctx, keys)
        n_dom = ctx.blueprint.n_domains if ctx.blueprint is not None else 0
        state = BatchState(
            keys=keys,
            theta=theta0,
            se=np.full(n, d.estimator.prior_sd),
            log_post=np.tile(ctx.log_prior - ctx.log_prior.max(), (n, 1)),
            administered=np.zeros((n, n_items), dtype=bool),
            blocked=np.zeros((n, n_items), dtype=bool) if blocked is None else np.array(blocked, dtype=bool),
            responses=np.full((n, n_items), np.nan) if ctx.needs_responses else None,
            pretest_responses=np.full((n, n_items), np.nan) if d.pretest_items else None,
            counts=np.zeros((n, n_dom), dtype=np.int64),
            n_scored=np.zeros(n, dtype=np.int64),
            n_given=np.zeros(n, dtype=np.int64),
            active=np.ones(n, dtype=bool),
            rule=np.zeros(n, dtype=np.int8),
            decision=np.full(n, Decision.NO_DECISION, dtype=np.int8),
            sequence=np.full((n, L), -1, dtype=np.int64),
            seq_response=np.full((n, L), np.nan),
            seq_pretest=np.zeros((n, L), dtype=bool),
            seq_note=np.zeros((n, L), dtype=np.int8),
            theta_path=np.full((n, L), np.nan),
            se_path=np.full((n, L), np.nan),
            llr=np.zeros(n),
            elapsed=np.zeros(n),
            time_limit=np.broadcast_to(np.asarray(
                (d.stopping.time_limit or np.inf) if time_limit is None else time_limit, dtype=float), (n,)).copy(),
            pretest_slot=pretest_slots(ctx, keys),
            start_items=self.start_rule.first_items(ctx, keys),
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
        return self.ctx.information_at(theta)

    def criterion(self, state: BatchState, rows: np.ndarray) -> np.ndarray:
        """The design's selection criterion for sessions ``rows``, ``(n, I)``."""
        return self.selection.criterion(self.ctx, state, rows)

    def select(self, state: BatchState) -> np.ndarray:
        """Choose the next item of every active session, ``(N,)`` (-1 where inactive).

        Sessions with no eligible item left stop here (rule ``pool_exhausted``).
        """
        ctx = self.ctx
        items = np.full(state.n, -1, dtype=np.int64)
        rows = np.flatnonzero(state.active)
        if rows.size == 0:
            return items
        pos = state.n_given[rows]
        pre = state.pretest_slot[rows, np.minimum(pos, ctx.max_positions - 1)]
        if pre.any():  # a pretest position: a uniform draw among the pretest items
            pr = rows[pre]
            crit = uniforms(state.keys[pr], state.n_given[pr], "pretest_item", width=ctx.arrays.n_items)
            elig = ctx.pretest[None, :] & ~state.blocked[pr]
            items[pr] = self.chooser.choose(crit, elig, state.keys[pr], state.n_given[pr], k=1)
        sc = rows[~pre | (items[rows] < 0)]
        if sc.size:
            items[sc] = self._select_scored_rows(state, sc)
        if self.sympson_hetter.enabled:
            testing = np.flatnonzero(items >= 0)  # each session tests its pick until one is accepted
            for attempt in range(1, ctx.arrays.n_items + 1):
                testing = testing[items[testing] >= 0]
                scored = testing[ctx.operational[items[testing]]]
                if scored.size == 0:
                    break
                rejected = scored[~self.sympson_hetter.accepts(state, scored, items[scored], attempt)]
                if rejected.size == 0:
                    break
                state.blocked[rejected, items[rejected]] = True  # passed over for the rest of this test
                items[rejected] = self._select_scored_rows(state, rejected, attempt)
                testing = rejected
        gone = rows[items[rows] < 0]
        if gone.size:
            self._stop(state, gone, StopRule.POOL_EXHAUSTED)
        return items

    def _select_scored_rows(self, state, rows, attempt=0):
        """Scored items for ``rows``: start items first, then the rule (by blueprint domain, or the shadow test)."""
        step = state.n_given[rows] * STEP_STRIDE + attempt
        out = np.full(rows.size, -1, dtype=np.int64)
        if state.start_items.shape[1]:
            first = state.n_scored[rows] < state.start_items.shape[1]
            if first.any():
                cand = state.start_items[rows[first], state.n_scored[rows[first]]]
                ok = ~state.blocked[rows[first], cand]
                out[np.flatnonzero(first)[ok]] = cand[ok]
        todo = out < 0
        if not todo.any():
            return out
        if self.shadow:
            out[todo] = self._select_shadow(state, rows[todo], step[todo])
        else:
            out[todo] = self._select_heuristic(state, rows[todo], step[todo])
        return out

    def _select_heuristic(self, state, rows, step):
        """The best item in the most preferred blueprint domain that has one (the whole pool without a blueprint)."""
        bp = self.ctx.blueprint
        if bp is None:
            return self._select_in_groups(state, rows, np.zeros(rows.size, dtype=np.int64), step)
        pref = bp.domain_preference(state.counts[rows], state.n_scored[rows], self.ctx.design.max_length)
        got = np.full(rows.size, -1, dtype=np.int64)
        left = np.ones(rows.size, dtype=bool)
        for rank in range(pref.shape[1]):  # one pass per blueprint domain rank, vectorized over sessions
            dom = pref[:, rank]
            try_ = left & (dom >= 0)
            if not try_.any():
                break
            got[try_] = self._select_in_groups(state, rows[try_], dom[try_] + 1, step[try_])
            left &= got < 0
        return got

    def _eligible(self, state, rows, group, item_ok):
        ctx = self.ctx
        e = ~state.blocked[rows] & ctx.scored_pool[None, :]
        if item_ok is not None:
            e &= item_ok[None, :]
        if ctx.blueprint is not None:
            g = np.asarray(group)
            e &= (g[:, None] == 0) | (ctx.blueprint.item_domain[None, :] == g[:, None] - 1)
        return e

    def _select_in_groups(self, state, rows, group, step):
        """Best eligible item of item group ``group[r]`` (0 = pool, 1 + d = domain d) for each of ``rows``."""
        k = self.chooser.k
        item_ok = self.max_rate.item_ok(self.ctx, state)
        items = np.full(rows.size, -1, dtype=np.int64)
        todo = np.ones(rows.size, dtype=bool)
        if self.mfi_index is not None:
            theta = self.selection.information_point(self.ctx, state, rows)
            items, decided = exact_mfi(self.mfi_index, self.ctx, state, rows, theta, group, k, item_ok, step,
                                       self.window_margin)
            todo = ~decided
        if todo.any():
            sub = rows[todo]
            elig = self._eligible(state, sub, group[todo], item_ok)
            items[todo] = self.chooser.choose(self.criterion(state, sub), elig, state.keys[sub], step[todo])
        return items

    def _select_shadow(self, state, rows, step):
        """van der Linden's shadow test per session; a time-out uses the best test found, or falls back."""
        ctx = self.ctx
        bp, d = ctx.blueprint, ctx.design
        assert bp is not None  # the shadow test runs only with a blueprint
        lo, hi = bp.bounds(d.max_length)
        item_ok = self.max_rate.item_ok(ctx, state)
        elig = self._eligible(state, rows, np.zeros(rows.size, dtype=np.int64), item_ok)
        crit = self.criterion(state, rows)
        out = np.full(rows.size, -1, dtype=np.int64)
        note = np.zeros(rows.size, dtype=np.int8)
        scored_given = state.administered[rows] & ctx.operational[None, :]
        has_enemy = np.asarray((ctx.enemies >= 0).any(axis=1) if ctx.enemies.shape[1]
                               else np.zeros(ctx.arrays.n_items, bool))
        for j, r in enumerate(rows):  # one MILP per session: the shadow test is sequential by nature
            value = np.where(np.isfinite(crit[j]), crit[j], 0.0)
            value = value - value.min() + 1e-9
            free = elig[j] & ~scored_given[j]
            cand = self.shadow_candidates(value, free, state.counts[r], hi, bp.item_domain, has_enemy)
            sol = shadow_test(value, scored_given[j], cand, bp.item_domain, lo, hi, d.max_length,
                              ctx.arrays.enemy_pairs, time_limit=d.content.time_limit)
            if sol.items is None:
                if sol.status == "timeout":
                    note[j] = SelectionNote.SHADOW_FALLBACK
                continue
            in_test = np.zeros(ctx.arrays.n_items, dtype=bool)
            in_test[sol.items] = True
            out[j] = self.chooser.choose(crit[j : j + 1], (in_test & free)[None, :], state.keys[r : r + 1],
                                         step[j : j + 1])[0]
            if sol.status == "incumbent":
                note[j] = SelectionNote.SHADOW_INCUMBENT
        fallback = note == SelectionNote.SHADOW_FALLBACK
        if fallback.any():  # no test found in time: the blueprint heuristic picks the item
            out[fallback] = self._select_heuristic(state, rows[fallback], step[fallback])
        state.seq_note[rows, np.minimum(state.n_given[rows], ctx.max_positions - 1)] = note
        return out

    #: the candidate reduction of the shadow test (replaceable, e.g. to check that it keeps the optimum)
    shadow_candidates = staticmethod(shadow_candidates)

    # ------------------------------------------------------------------ recording
    def record(self, state: BatchState, rows, items, responses, seconds=None) -> None:
        """Record the answers ``responses`` of sessions ``rows`` to ``items``, update and check stopping.

        ``responses`` must already be valid categories (the session validates at its edge).
        """
        ctx = self.ctx
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return
        items = np.asarray(items, dtype=np.int64)
        resp = np.asarray(responses, dtype=float)
        secs = np.broadcast_to(np.asarray(ctx.design.stopping.seconds_per_item if seconds is None else seconds,
                                          dtype=float), rows.shape)
        pos = state.n_given[rows]
        pre = ctx.pretest[items] & state.pretest_slot[rows, pos]
        state.sequence[rows, pos] = items
        state.seq_response[rows, pos] = resp
        state.seq_pretest[rows, pos] = pre
        state.administered[rows, items] = True
        state.blocked[rows, items] = True
        if ctx.enemies.shape[1]:
            en = ctx.enemies[items]  # (n, deg)
            r2 = np.broadcast_to(rows[:, None], en.shape)
            ok = en >= 0
            state.blocked[r2[ok], en[ok]] = True
        state.exposure_counts += np.bincount(items, minlength=state.exposure_counts.size)
        state.n_given[rows] += 1
        state.elapsed[rows] += secs
        s_rows, s_items, s_resp = rows[~pre], items[~pre], resp[~pre].astype(np.int64)
        if state.pretest_responses is not None:
            state.pretest_responses[rows[pre], items[pre]] = resp[pre]
        if s_rows.size:
            if state.responses is not None:
                state.responses[s_rows, s_items] = s_resp
            state.n_scored[s_rows] += 1
            if ctx.blueprint is not None:
                dom = ctx.blueprint.item_domain[s_items]
                has = dom >= 0
                np.add.at(state.counts, (s_rows[has], dom[has]), 1)
            state.log_post[s_rows] += np.take(ctx.lp_rows, s_resp * ctx.arrays.n_items + s_items, axis=0)
            for rule in self.stopping:
                rule.observe(ctx, state, s_rows, s_items, s_resp)
            self._update_estimates(state, s_rows, ctx.design.estimator.interim)
        state.theta_path[rows, pos] = state.theta[rows]
        state.se_path[rows, pos] = state.se[rows]
        self._check_stop(state, rows)

    def _update_estimates(self, state, rows, method):
        if method == "eap":
            state.theta[rows], state.se[rows] = self.ctx.eap_moments(state.log_post[rows])
            return
        est = self.ctx.point_estimate(state.responses[rows], method)
        state.theta[rows] = est.theta
        state.se[rows] = est.se

    # ------------------------------------------------------------------ stopping
    def _check_stop(self, state, rows):
        ctx, d = self.ctx, self.ctx.design
        rows = rows[state.active[rows]]
        if rows.size == 0:
            return
        n = state.n_scored[rows]
        can = n >= d.min_length
        if ctx.blueprint is not None:
            can &= ctx.blueprint.may_stop(state.counts[rows], n)
        rule = np.zeros(rows.size, dtype=np.int8)
        decision = np.full(rows.size, Decision.NO_DECISION, dtype=np.int8)
        by_theta = np.ones(rows.size, dtype=bool)
        for r in self.stopping:  # precedence order: the first rule that fires names the stop
            v: Verdict = r.check(ctx, state, rows)
            hit = v.hit & (rule == StopRule.NONE)
            if r.gated:
                hit &= can
            rule[hit] = r.code
            if v.decision is not None:
                decision[hit] = v.decision[hit]
                by_theta[hit] = False if v.by_theta is None else v.by_theta[hit]
        stop = rule != StopRule.NONE
        if stop.any():
            self._stop(state, rows[stop], rule[stop], decision[stop], by_theta[stop])

    def expire(self, state: BatchState, rows) -> None:
        """Stop the active sessions ``rows`` because their time ran out while an item was on screen (the
        late answer is not taken): the time-limit rule and the design's run-out-of-time decision."""
        rows = np.asarray(rows, dtype=np.int64)
        rows = rows[state.active[rows]]
        rule = next((r for r in self.stopping if isinstance(r, TimeLimit)), None)
        if rows.size == 0 or rule is None:
            return
        decision, by_theta = rule.on_timeout.decide(self.ctx, state, rows)
        self._stop(state, rows, np.full(rows.size, StopRule.TIME_LIMIT, dtype=np.int8), decision, by_theta)

    def _stop(self, state, rows, rule, decision=None, by_theta=None):
        ctx, d = self.ctx, self.ctx.design
        rows = np.asarray(rows)
        state.active[rows] = False
        state.rule[rows] = rule
        est = d.estimator
        if est.final == est.interim:
            state.final_theta[rows], state.final_se[rows] = state.theta[rows], state.se[rows]
        elif est.final == "eap":
            state.final_theta[rows], state.final_se[rows] = ctx.eap_moments(state.log_post[rows])
        else:
            e = ctx.point_estimate(state.responses[rows], est.final)
            state.final_theta[rows], state.final_se[rows] = e.theta, e.se
        if decision is None:  # the pool ran out: decide by θ̂, unless the test is shorter than min_length
            short = state.n_scored[rows] < d.min_length
            decision = np.full(rows.size, Decision.NO_DECISION, dtype=np.int8)
            by_theta = ~short
        state.decision[rows] = final_decision(ctx, state.final_theta[rows], decision, by_theta)

    # ------------------------------------------------------------------ results
    def p_pass(self, state: BatchState, rows=None) -> np.ndarray | None:
        """P(θ ≥ θcut) of the sessions ``rows`` (all by default); None without a cut."""
        return self.ctx.p_pass(state.log_post if rows is None else state.log_post[rows])

    def result(self, state: BatchState) -> CatResult:
        """Results of every session (finished ones final; active ones interim). A finished test's scaled score
        agrees with its decision (see :meth:`ScoreScale.to_reported <adaptive.scoring.ScoreScale.to_reported>`):
        NaN when there is no decision."""
        d = self.ctx.design
        theta = np.where(state.active, state.theta, state.final_theta)
        se = np.where(state.active, state.se, state.final_se)
        scaled = None
        if d.scale is not None:  # finished tests report a score that agrees with their decision
            done = ~state.active
            scaled = d.scale.to_reported(theta, done & (state.decision == Decision.PASS),
                                         done & (state.decision == Decision.FAIL),
                                         done & (state.decision == Decision.NO_DECISION))
        return CatResult(
            theta=theta,
            se=se,
            scaled=scaled,
            p_pass=self.p_pass(state),
            decision=Decision.labels()[state.decision.astype(int) + 1],
            rule=StopRule.labels()[state.rule],
            n_items=state.n_scored.copy(),
            sequence=state.sequence.copy(),
            scored=(state.sequence >= 0) & ~state.seq_pretest,
            response=state.seq_response.copy(),
            theta_path=state.theta_path.copy(),
            se_path=state.se_path.copy(),
            item_ids=self.ctx.arrays.ids,
        )
