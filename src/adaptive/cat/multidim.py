"""Multidimensional adaptive testing (MCAT): vector θ, information matrices, the optimality rules of mirtCAT.

A batch of N sessions moves as arrays; a live session (:class:`~adaptive.cat.multidim_session.MultidimSession`)
is a batch of one through the same three steps: :func:`select` (the next item of every active session),
:func:`record` (its answer, then θ̂ and its posterior covariance), :func:`stop` (who is done, and why).

Selection (Segall 1996; Mulder & van der Linden 2009; mirtCAT's ``criteria``): with ``T(θ̂)`` the Fisher
information matrix of the items given so far (plus the prior's, ``Σ⁻¹``, when ``include_prior``) and ``I_j(θ̂)``
that of a candidate item,

==========  =================================================================
``d_rule``  maximize ``det(T + I_j)``
``t_rule``  maximize ``trace(T + I_j)``
``a_rule``  minimize ``trace((T + I_j)⁻¹)`` (a singular matrix counts as +inf)
``e_rule``  maximize the smallest eigenvalue of ``T + I_j``
``w_rule``  maximize ``wᵀ (T + I_j) w`` (``w``: ``weights``, default equal)
``kl``      maximize the Kullback-Leibler information of the item between θ̂ and θ, summed over a 5^K grid
            on θ̂ ± 3/√n per dimension (Chang & Ying's interval, n items given)
==========  =================================================================

Ties go to the lowest item index (``argmax``), as R's ``which.max``: with no item given and no prior term,
every item's information matrix is singular in two or more dimensions, so the D-rule's first item is item 1,
as in mirtCAT. Eligibility: items not yet given, not an enemy of one given, not set aside by Sympson–Hetter, and
whose content domain has not reached its maximum; when the slots left are only enough for the domains' minima,
only items of domains below their minimum. ``randomesque`` picks uniformly among the best k. The SE, trace and
determinant stops wait until every domain has its minimum. With ``content="shadow"`` a shadow test per step
chooses instead (:mod:`adaptive.cat.multidim_shadow`).

Estimation after every answer: MAP with the prior N(μ, Σ) (default) or EAP on the product grid
(:mod:`adaptive.scoring.multidim`). Stopping: ``max_items``; after ``min_items``, the SE of every dimension at
most ``se_target``, or the trace / determinant of the posterior covariance at most ``trace_target`` /
``det_target``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..exceptions import DesignError
from ..irt.linear import LinearKind, grid_of, information, information_weight, log_prob
from ..scoring.multidim import eap_vector, map_vector
from .multidim_design import RULES, MultidimDesign
from .multidim_shadow import enemy_pairs, shadow_pick

__all__ = ["MultidimDesign", "MultidimBatch", "RULES", "select", "record", "stop", "run_mcat", "criterion_values",
           "new_batch", "pretest_due", "record_pretest", "STOP_LABELS"]

STOP_LABELS = ("running", "max_items", "se_target", "trace_target", "det_target", "pool_exhausted", "time_limit")


@dataclass
class MultidimBatch:
    """The state of N sessions: ``given (N, L)`` item indices (-1 unused), ``answers (N, I)`` (NaN = not given),
    ``theta (N, K)``, ``cov (N, K, K)``, ``n_given (N,)``, ``stop_reason (N,)`` codes into ``STOP_LABELS``."""

    given: np.ndarray
    answers: np.ndarray
    theta: np.ndarray
    cov: np.ndarray
    n_given: np.ndarray
    stop_reason: np.ndarray
    blocked: np.ndarray | None = None
    #: pretest: positions (in items given, scored and unscored) of each test's unscored items, the items chosen
    #: for it, how many it has had, and their answers (N, I; NaN elsewhere)
    pretest_at: np.ndarray | None = None
    pretest_items: np.ndarray | None = None
    n_pretest: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    pretest_answers: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    #: shadow-test steps that fell back to the heuristic (the solver found no test), per session
    shadow_fallbacks: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))

    @property
    def active(self) -> np.ndarray:
        return self.stop_reason == 0

    @property
    def se(self) -> np.ndarray:
        return np.sqrt(np.diagonal(self.cov, axis1=1, axis2=2))

    @property
    def stop_labels(self) -> np.ndarray:
        return np.array(STOP_LABELS, dtype=object)[self.stop_reason]


class _Compiled:
    """What the steps need from bank + design, computed once."""

    def __init__(self, bank, design: MultidimDesign):
        design.check(bank)
        self.bank, self.design = bank, design
        k = bank.n_dims
        self.mean = bank.latent_mean if design.prior_mean is None else np.asarray(design.prior_mean, dtype=float)
        self.cov = bank.latent_cov if design.prior_cov is None else np.asarray(design.prior_cov, dtype=float)
        self.prec = np.linalg.inv(self.cov)
        self.weights = np.full(k, 1.0 / k) if design.weights is None else np.asarray(design.weights, dtype=float)
        index = {i: j for j, i in enumerate(bank.item_ids)}
        labels = sorted(set(design.domains.values()), key=str)
        self.domain = np.full(len(bank), -1)
        for iid, dom in design.domains.items():
            self.domain[index[iid]] = labels.index(dom)
        self.domain_max = np.array([int(design.domain_max.get(d, design.max_items)) for d in labels])
        self.domain_min = np.array([int(design.domain_min.get(d, 0)) for d in labels])
        self.pretest = np.array([index[i] for i in design.pretest], dtype=int)
        self.sh = np.ones(len(bank))
        for iid, k in design.exposure.items():
            self.sh[index[iid]] = float(k)
        self.enemy_groups = [np.array([index[i] for i in s]) for s in design.enemies]
        self.pairs = enemy_pairs(self.enemy_groups)
        #: every item's information matrix has rank one (no nominal items): the fast criteria apply
        self.rank_one = not bool(np.any(bank.kind == LinearKind.NOMINAL))


def new_batch(comp: _Compiled, n: int, rng=None) -> MultidimBatch:
    n_items = len(comp.bank)
    m = comp.design.pretest_count
    at = items = None
    if m:
        rng = np.random.default_rng(rng)
        slots = comp.design.min_items + m - 1  # positions 0..slots-1: all of them before the earliest stop
        at = np.sort(np.argsort(rng.random((n, max(slots, m))), axis=1)[:, :m], axis=1)
        items = comp.pretest[np.argsort(rng.random((n, comp.pretest.size)), axis=1)[:, :m]]
    return MultidimBatch(pretest_at=at, pretest_items=items, n_pretest=np.zeros(n, dtype=int),
                         pretest_answers=np.full((n, n_items), np.nan),
given=np.full((n, comp.design.max_items), -1), answers=np.full((n, n_items), np.nan),
                         theta=np.tile(comp.mean, (n, 1)), cov=np.tile(comp.cov, (n, 1, 1)),
                         n_given=np.zeros(n, dtype=int), stop_reason=np.zeros(n, dtype=int),
                         blocked=np.zeros((n, n_items), dtype=bool), shadow_fallbacks=np.zeros(n, dtype=int))


def _domain_counts(comp: _Compiled, answered) -> np.ndarray:
    onehot = (comp.domain[:, None] == np.arange(comp.domain_max.size)[None, :]).astype(float)
    return answered.astype(float) @ onehot  # (n, D) items given per domain


def minima_met(comp: _Compiled, state: MultidimBatch) -> np.ndarray:
    """``(N,)`` whether every domain has its minimum number of items."""
    if not comp.domain_min.any():
        return np.ones(state.theta.shape[0], dtype=bool)
    return np.asarray((_domain_counts(comp, ~np.isnan(state.answers)) >= comp.domain_min[None, :]).all(axis=1))


def _eligible(comp: _Compiled, state: MultidimBatch, rows) -> np.ndarray:
    ok = np.isnan(state.answers[rows])
    ok[:, comp.pretest] = False
    if state.blocked is not None:
        ok &= ~state.blocked[rows]
    if (comp.domain >= 0).any():
        counts = _domain_counts(comp, ~np.isnan(state.answers[rows]))
        full = counts >= comp.domain_max[None, :]
        ok &= ~np.where(comp.domain[None, :] >= 0, full[:, np.maximum(comp.domain, 0)], False)
        if comp.domain_min.any():  # when the slots left are only enough for the minima, only those domains
            short = np.maximum(comp.domain_min[None, :] - counts, 0)
            left = comp.design.max_items - state.n_given[rows]
            must = short.sum(axis=1) >= left
            needed = np.where(comp.domain[None, :] >= 0, short[:, np.maximum(comp.domain, 0)] > 0, False)
            ok &= ~must[:, None] | needed
    for grp in comp.enemy_groups:
        hit = ~np.isnan(state.answers[rows][:, grp]).all(axis=1)
        ok[np.ix_(hit, grp)] = False
    return ok


def criterion_values(comp: _Compiled, state: MultidimBatch, rows) -> np.ndarray:
    """``(len(rows), I)`` criterion of every item for the sessions ``rows`` (larger is better)."""
    bank, rule = comp.bank, comp.design.rule
    theta = state.theta[rows]
    if rule == "kl":
        return _kl_values(comp, state, rows)
    given = ~np.isnan(state.answers[rows])
    if comp.rank_one:
        return _rank_one_values(comp, theta, given, rule)
    info = information(bank.kind, bank.n_cat, bank.phi, theta).transpose(1, 0, 2, 3)  # (n, I, K, K)
    test = np.einsum("ni,nikl->nkl", given.astype(float), info)
    if comp.design.include_prior:
        test = test + comp.prec[None]
    return _matrix_values(test[:, None] + info, rule, comp.weights)


def _matrix_values(total, rule, weights):
    """The rule's criterion of the matrices ``total (n, I, K, K)``."""
    if rule == "d_rule":
        return np.linalg.det(total)
    if rule == "t_rule":
        return np.trace(total, axis1=2, axis2=3)
    if rule == "w_rule":
        return np.einsum("k,nikl,l->ni", weights, total, weights)
    if rule == "e_rule":
        return np.linalg.eigvalsh(total)[..., 0]
    det = np.linalg.det(total)
    with np.errstate(divide="ignore", invalid="ignore"):
        singular = np.abs(det) <= 1e-12 * np.maximum(np.abs(total).max(axis=(2, 3)) ** total.shape[2], 1e-300)
        safe = np.where(singular[..., None, None], np.eye(total.shape[2]), total)
        tr = np.trace(np.linalg.inv(safe), axis1=2, axis2=3)
    return -np.where(singular, np.inf, tr)


def _adjugate(m):
    """Adjugate of ``m (n, K, K)`` (cofactors transposed), defined for singular matrices too."""
    k = m.shape[-1]
    if k == 1:
        return np.ones_like(m)
    if k == 2:
        out = np.empty_like(m)
        out[:, 0, 0], out[:, 1, 1] = m[:, 1, 1], m[:, 0, 0]
        out[:, 0, 1], out[:, 1, 0] = -m[:, 0, 1], -m[:, 1, 0]
        return out
    out = np.empty_like(m)
    idx = np.arange(k)
    for i in range(k):
        for j in range(k):
            minor = m[:, idx != i][:, :, idx != j]
            out[:, j, i] = (-1) ** (i + j) * np.linalg.det(minor)
    return out


def _rank_one_values(comp, theta, given, rule):
    """The criteria when every item's information is ``w_j a_j a_jᵀ`` (all kinds but the nominal), without forming
    the ``(n, I, K, K)`` matrices: ``det(T + w a aᵀ) = det T + w aᵀ adj(T) a`` (matrix determinant lemma),
    ``trace(T + w a aᵀ) = trace T + w |a|²``, ``vᵀ(T + w a aᵀ)v = vᵀTv + w (a·v)²``, and for the A-rule
    ``trace((T + w a aᵀ)⁻¹) = trace T⁻¹ - w aᵀT⁻²a / (1 + w aᵀT⁻¹a)`` (Sherman-Morrison) where T is invertible."""
    bank = comp.bank
    k = bank.n_dims
    a = bank.phi[:, :k]                                                   # (I, K)
    w = information_weight(bank.kind, bank.n_cat, bank.phi, theta).T      # (n, I)
    test = np.einsum("ni,ik,il->nkl", w * given, a, a)
    if comp.design.include_prior:
        test = test + comp.prec[None]
    if rule == "d_rule":
        quad = np.einsum("ik,nkl,il->ni", a, _adjugate(test), a)
        return np.linalg.det(test)[:, None] + w * quad
    if rule == "t_rule":
        return np.trace(test, axis1=1, axis2=2)[:, None] + w * (a * a).sum(axis=1)[None, :]
    if rule == "w_rule":
        v = comp.weights
        return (v @ test @ v)[:, None] + w * (a @ v)[None, :] ** 2
    if rule == "a_rule":
        det = np.linalg.det(test)
        ok = np.abs(det) > 1e-12 * np.maximum(np.abs(test).max(axis=(1, 2)) ** k, 1e-300)
        if ok.all():
            inv = np.linalg.inv(test)
            u = np.einsum("nkl,il->nik", inv, a)                           # T⁻¹a
            return -(np.trace(inv, axis1=1, axis2=2)[:, None] - w * (u * u).sum(axis=2) / (1 + w * (u * a[None]).sum(
                axis=2)))
    total = test[:, None] + w[:, :, None, None] * (a[:, :, None] * a[:, None, :])[None]
    return _matrix_values(total, rule, comp.weights)


def _kl_values(comp, state, rows):
    """KL information of every item between θ̂ and the 5^K points of θ̂ ± 3/√n, summed; sessions in blocks so
    that a block's ``(I, n·5^K, C)`` log-probabilities stay a few million numbers."""
    bank = comp.bank
    k = bank.n_dims
    n_used = np.maximum((~np.isnan(state.answers[rows])).sum(axis=1), 1)
    offsets = grid_of(np.linspace(-1.0, 1.0, 5), k)                           # (G, K)
    theta = state.theta[rows]
    out = np.empty((len(rows), len(bank)))
    per = max(1, 4_000_000 // (len(bank) * offsets.shape[0] * int(bank.n_cat.max())))
    for lo in range(0, len(rows), per):
        t, n = theta[lo:lo + per], n_used[lo:lo + per]
        pts = t[:, None, :] + offsets[None, :, :] * (3.0 / np.sqrt(n))[:, None, None]  # (b, G, K)
        lp_hat = log_prob(bank.kind, bank.n_cat, bank.phi, t)                          # (I, b, C)
        lp = log_prob(bank.kind, bank.n_cat, bank.phi, pts.reshape(-1, k)).reshape(
            len(bank), t.shape[0], offsets.shape[0], -1)                               # (I, b, G, C)
        out[lo:lo + per] = np.einsum("ibc,ibgc->bi", np.exp(lp_hat), lp_hat[:, :, None, :] - lp)
    return out


def select(comp: _Compiled, state: MultidimBatch, rng: np.random.Generator) -> np.ndarray:
    """The next item index of every active session (-1 where none is eligible)."""
    rows = np.flatnonzero(state.active)
    out = np.full(state.theta.shape[0], -1)
    if rows.size == 0:
        return out
    values = criterion_values(comp, state, rows)
    ok = _eligible(comp, state, rows)
    if comp.design.content == "shadow":
        free = np.isnan(state.answers[rows])
        free[:, comp.pretest] = False
        if state.blocked is not None:
            free &= ~state.blocked[rows]
        heuristic = np.argmax(np.where(ok, values, -np.inf), axis=1)
        heuristic = np.where(ok.any(axis=1), heuristic, -1)
        out[rows] = shadow_pick(comp, state, rows, values, free, rng, heuristic)
        return out
    values = np.where(ok, values, -np.inf)
    kr = comp.design.randomesque
    pend = np.arange(rows.size)
    best = np.full(rows.size, -1)
    while pend.size:
        v, o = values[pend], ok[pend]
        if kr == 1:
            pick = np.argmax(v, axis=1)
        else:
            order = np.argsort(-v, axis=1, kind="stable")[:, :kr]
            n_ok = np.minimum(o.sum(axis=1), kr)
            pick = order[np.arange(pend.size), (rng.random(pend.size) * np.maximum(n_ok, 1)).astype(int)]
        pick = np.where(o.any(axis=1), pick, -1)
        best[pend] = pick
        # Sympson-Hetter: a selected item is given with probability k, else set aside for this test
        live = pick >= 0
        if comp.sh.min() >= 1.0 or not live.any():
            break
        refused = np.zeros(pend.size, dtype=bool)
        refused[live] = rng.random(int(live.sum())) >= comp.sh[pick[live]]
        if not refused.any():
            break
        back = pend[refused]
        items = pick[refused]
        if state.blocked is not None:
            state.blocked[rows[back], items] = True
        values[back, items] = -np.inf
        ok[back, items] = False
        best[back] = -1
        pend = back
    out[rows] = best
    return out


def pretest_due(comp: _Compiled, state: MultidimBatch) -> np.ndarray:
    """``(N,)`` the pretest item each active test gives next (-1 where the next item is scored)."""
    out = np.full(state.theta.shape[0], -1)
    if not comp.design.pretest_count or state.pretest_at is None or state.pretest_items is None:
        return out
    m = comp.design.pretest_count
    owed = state.active & (state.n_pretest < m)
    rows = np.flatnonzero(owed)
    k = state.n_pretest[rows]
    now = state.pretest_at[rows, k] == state.n_given[rows] + k
    out[rows[now]] = state.pretest_items[rows[now], k[now]]
    return out


def record_pretest(state: MultidimBatch, items: np.ndarray, answers: np.ndarray) -> None:
    """Keep the answers to pretest ``items`` (one per session, -1 = none); θ̂ is not touched."""
    rows = np.flatnonzero(items >= 0)
    state.pretest_answers[rows, items[rows]] = answers[rows]
    state.n_pretest[rows] += 1


def record(comp: _Compiled, state: MultidimBatch, items: np.ndarray, answers: np.ndarray) -> None:
    """Record ``answers`` to ``items`` (one per session, -1 = none) and update θ̂ and its covariance."""
    rows = np.flatnonzero(items >= 0)
    if rows.size == 0:
        return
    it = items[rows]
    state.answers[rows, it] = answers[rows]
    state.given[rows, state.n_given[rows]] = it
    state.n_given[rows] += 1
    if comp.design.estimator == "map":
        theta, cov = map_vector(comp.bank, state.answers[rows], comp.mean, comp.cov, start=state.theta[rows])
    else:
        theta, cov = eap_vector(comp.bank, state.answers[rows], None, comp.mean, comp.cov)
    state.theta[rows], state.cov[rows] = theta, cov


def stop(comp: _Compiled, state: MultidimBatch, exhausted=None) -> None:
    """Mark the sessions that stop now (``stop_reason`` > 0)."""
    d = comp.design
    active = state.active
    reason = np.zeros_like(state.stop_reason)
    ready = (state.n_given >= d.min_items) & minima_met(comp, state)
    if d.det_target is not None:
        reason = np.where(ready & (np.linalg.det(state.cov) <= d.det_target), 4, reason)
    if d.trace_target is not None:
        reason = np.where(ready & (np.trace(state.cov, axis1=1, axis2=2) <= d.trace_target), 3, reason)
    if d.se_target is not None:
        reason = np.where(ready & (state.se <= d.se_target).all(axis=1), 2, reason)
    reason = np.where(state.n_given >= d.max_items, 1, reason)
    if exhausted is not None:
        reason = np.where(exhausted & (reason == 0), 5, reason)
    state.stop_reason = np.where(active, reason, state.stop_reason)


def run_mcat(bank, design: MultidimDesign, responses, rng=None) -> MultidimBatch:
    """Simulate (or replay post hoc) N sessions: ``responses`` is ``(N, I)`` answers to every item (a full
    matrix: each session reads its answer to the item it gets), or a callable ``(rows, items) -> answers``."""
    comp = _Compiled(bank, design)
    rng = np.random.default_rng(rng)
    if callable(responses):
        answer = responses
        n = None
    else:
        full = np.asarray(responses, dtype=float)
        if full.ndim != 2 or full.shape[1] != len(bank):
            raise DesignError(f"responses: give an N x {len(bank)} matrix of answers (one column per item)")
        n = full.shape[0]

        def answer(rows, items):
            return full[rows, items]
    if n is None:
        raise DesignError("with a callable responder, use MultidimSession or pass a full matrix")
    state = new_batch(comp, n, rng)
    while state.active.any():
        due = pretest_due(comp, state)
        if (due >= 0).any():
            rows = np.flatnonzero(due >= 0)
            ans = np.full(n, np.nan)
            ans[rows] = answer(rows, due[rows])
            record_pretest(state, due, ans)
            continue
        items = select(comp, state, rng)
        exhausted = state.active & (items < 0)
        ans = np.full(n, np.nan)
        rows = np.flatnonzero(items >= 0)
        ans[rows] = answer(rows, items[rows])
        record(comp, state, items, ans)
        stop(comp, state, exhausted)
    return state
