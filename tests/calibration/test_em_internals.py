"""The E-step's two indicator layouts, its incremental single-precision product and the M-step's item kernels,
against direct computations.

* Marginal log-likelihood: the definition, person by person (log-sum-exp over the nodes of the sum of the
  log-probabilities of the answered items plus the group's log prior weight); no indicator matrix.
* Expected counts: ``R[i, q, k] = sum over persons who answered k to item i of the posterior at node q``,
  accumulated person by person.
* M-step kernels (2PL; 3PL/4PL): gradient and negative Hessian against central differences of the kernels'
  own objective, which is checked against ``sum r log P`` written out.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, logsumexp

import adaptive
from adaptive.calibration.em import EMSettings, Problem, run_em
from adaptive.irt.mixed import from_irt, internal_log_prob
from adaptive.irt.registry import Family
from adaptive.synthetic import simulate_responses

from .mixed_bank import mixed_bank

THETA = np.linspace(-6, 6, 61)


def _mixed(n_persons, missing, seed, n_groups=2):
    """A mixed bank (2PL, 3PL, 4-category graded, 3-category GPCM), responses with cells missing at random,
    and group labels with a shifted second group."""
    rng = np.random.default_rng(seed)
    bank = mixed_bank(rng, 12, ("2pl", "3pl", "graded", "gpcm"), (0.8, 1.8))
    groups = rng.integers(0, n_groups, n_persons)
    theta = rng.standard_normal(n_persons) + 0.5 * groups
    x = simulate_responses(bank.compile(), theta, rng=seed + 1, missing=missing)
    arr = bank.compile()
    family = arr.family
    n_cat = np.array([it.n_cat for it in bank.items])
    phi = from_irt(family, n_cat, arr.a, arr.thresholds, arr.c, arr.d, 4)
    return x, family, n_cat, phi, groups


def _problem(x, family, n_cat, phi, groups, layout):
    n_groups = int(groups.max()) + 1
    latent = np.array([[0.0, 1.0], [0.4, 1.1]])[:n_groups]
    return Problem(x, family, n_cat, phi, np.zeros(phi.shape, bool), np.zeros(len(family), bool), THETA, groups,
                   latent, np.zeros((n_groups, 2), bool), {}, layout=layout)


def _direct(x, family, n_cat, phi, groups, latent):
    """Marginal log-likelihood and expected counts from their definitions, one person at a time."""
    logp = internal_log_prob(family, n_cat, phi, THETA)  # (I, Q, K)
    lw = -0.5 * ((THETA[None, :] - latent[:, :1]) / latent[:, 1:]) ** 2
    lw -= logsumexp(lw, axis=1, keepdims=True)
    counts = np.zeros(logp.shape)
    total = 0.0
    for n in range(x.shape[0]):
        seen = np.flatnonzero(~np.isnan(x[n]))
        cat = x[n, seen].astype(int)
        lik = logp[seen, :, cat].sum(axis=0) + lw[groups[n]]
        total += logsumexp(lik)
        post = np.exp(lik - logsumexp(lik))
        counts[seen, :, cat] += post
    return total, counts


@pytest.mark.parametrize("layout", ["dense", "sparse"])
def test_loglik_and_counts_equal_their_definitions(layout):
    x, family, n_cat, phi, groups = _mixed(300, 0.6, 11)
    x[7] = np.nan  # a person who answered nothing contributes the prior only
    pr = _problem(x, family, n_cat, phi, groups, layout)
    assert pr.layout.sparse == (layout == "sparse")
    latent = pr.params.latent0
    ll_ref, counts_ref = _direct(x, family, n_cat, phi, groups, latent)
    post, ll = pr.posterior(internal_log_prob(family, n_cat, phi, THETA), latent)
    assert ll == pytest.approx(ll_ref, abs=1e-8)
    r, g_mass = pr.counts(post, np.float64)
    valid = np.arange(r.shape[2])[None, None, :] < n_cat[:, None, None]
    np.testing.assert_allclose(np.where(valid, r, 0.0), counts_ref, atol=1e-10)
    np.testing.assert_allclose(g_mass.sum(axis=1), np.bincount(groups), rtol=1e-12)


def test_dense_and_sparse_layouts_agree_in_single_precision_across_threaded_blocks():
    # 3,000 persons x 61 nodes is large enough to be split in row blocks run on threads
    x, family, n_cat, phi, groups = _mixed(3000, 0.7, 12)
    dense, sparse = (_problem(x, family, n_cat, phi, groups, lay) for lay in ("dense", "sparse"))
    logp = internal_log_prob(family, n_cat, phi, THETA)
    # a first fast call (EM's first step) takes the whole product in single precision ...
    pd, lld = dense.posterior(logp, dense.params.latent0, fast=True)
    ps, lls = sparse.posterior(logp, sparse.params.latent0, fast=True)
    assert pd.dtype == ps.dtype == np.float32
    exact = dense.posterior(logp, dense.params.latent0)[1]
    assert lld == pytest.approx(exact, abs=1e-2) and lls == pytest.approx(exact, abs=1e-2)
    np.testing.assert_allclose(pd, ps, atol=1e-5)
    # ... a call at parameters that moved less is exact (where EM decides convergence)
    pd, lld = dense.posterior(logp, dense.params.latent0, fast=True)
    ps, lls = sparse.posterior(logp, sparse.params.latent0, fast=True)
    assert pd.dtype == ps.dtype == np.float32
    assert lld == pytest.approx(exact, abs=1e-4)  # float32 weights, float64 sums
    assert lld == pytest.approx(lls, abs=1e-5)  # the layouts sum the float32 weights in different orders
    assert lld == pytest.approx(lls, abs=1e-5)  # the layouts sum the float32 weights in different orders
    np.testing.assert_allclose(pd, ps, atol=1e-6)
    rd, gd = dense.counts(pd, np.float32)
    rs, gs = sparse.counts(ps, np.float32)
    valid = np.arange(rd.shape[2])[None, None, :] < n_cat[:, None, None]
    np.testing.assert_allclose(np.where(valid, rs, 0), np.where(valid, rd, 0), atol=2e-3, rtol=1e-5)
    np.testing.assert_allclose(gs, gd, rtol=1e-5, atol=1e-3)
    # no subnormal weights: they would slow every later product several-fold
    assert np.all((pd == 0) | (pd >= np.finfo(np.float32).tiny))


@pytest.mark.parametrize("layout", ["dense", "sparse"])
def test_incremental_single_precision_product_matches_the_exact_one(layout):
    x, family, n_cat, phi, groups = _mixed(3000, 0.5, 13)
    pr = _problem(x, family, n_cat, phi, groups, layout)
    lw = pr.log_weights(pr.params.latent0)
    # the exact product it starts from: a first call is single precision (EM still moving), a second one at the
    # same parameters exact
    first = pr.layout.loglik_table(internal_log_prob(family, n_cat, phi, THETA), lw, fast=True)
    assert first.dtype == np.float32 and pr.layout.last_product is None
    pr.layout.loglik_table(internal_log_prob(family, n_cat, phi, THETA), lw, fast=True)
    base = pr.layout.last_product
    assert base is not None
    rng = np.random.default_rng(0)
    for scale in (1e-4, 1e-2):
        moved = phi.copy()
        moved[:, :2] += rng.normal(0, scale, (phi.shape[0], 2))
        logp = internal_log_prob(family, n_cat, moved, THETA)
        inc = pr.layout.loglik_table(logp, lw, fast=True)
        assert pr.layout.last_product is base  # computed from the stored product, not afresh
        exact = pr.layout.loglik_table(logp, lw, fast=False)
        # single-precision rounding of the *change* (~1e-7 of its size per answered item) and of each entry's
        # distance below the person's largest value (where its posterior weight is e^-distance)
        ax = 1 if pr.layout.sparse else 0  # persons x nodes (sparse) or nodes x persons (dense)
        below = exact.max(axis=ax, keepdims=True) - exact
        assert np.all(np.abs(inc - exact) < 1e-4 * max(scale, 1e-3) + 1.2e-7 * below)
        assert logsumexp(inc, axis=ax).sum() == pytest.approx(logsumexp(exact, axis=ax).sum(), abs=1e-3)


def test_layouts_converge_to_the_same_estimates():
    x, family, n_cat, phi_true, groups = _mixed(1500, 0.6, 14, n_groups=1)
    fits = {}
    for layout in ("dense", "sparse"):
        phi0 = phi_true.copy()
        phi0[:, 0] = 1.0
        free = np.zeros(phi0.shape, bool)
        for i, (f, k) in enumerate(zip(family, n_cat, strict=True)):
            free[i, :2 if f == Family.DICHOTOMOUS else k] = True
            free[i, 2] |= f == Family.DICHOTOMOUS and np.isfinite(phi_true[i, 2])
        pr = Problem(x, family, n_cat, phi0, free, np.zeros(len(family), bool), THETA, groups, [[0.0, 1.0]],
                     [[False, False]], {"c": adaptive.calibration.priors.Prior("beta", 5, 17)}, layout=layout)
        st = run_em(pr, EMSettings(tol=1e-6))
        assert st.converged
        fits[layout] = (st.x, st.loglik)
    np.testing.assert_allclose(fits["dense"][0], fits["sparse"][0], atol=2e-5)
    assert fits["dense"][1] == pytest.approx(fits["sparse"][1], abs=1e-5)


# ---------------------------------------------------------------- M-step kernels


def _kernel_problem(models, seed):
    rng = np.random.default_rng(seed)
    n_items = len(models)
    phi = np.column_stack([rng.uniform(0.6, 2.0, n_items), rng.normal(0, 1, n_items),
                           np.full(n_items, -np.inf), np.full(n_items, np.inf)])
    free = np.zeros((n_items, 4), bool)
    free[:, :2] = True
    for i, m in enumerate(models):
        if m in ("3pl", "4pl"):
            phi[i, 2] = rng.normal(-1.5, 0.3)
            free[i, 2] = True
        if m == "4pl":
            phi[i, 3] = rng.normal(3.0, 0.3)
            free[i, 3] = True
    x = rng.integers(0, 2, (40, n_items)).astype(float)
    pr = Problem(x, np.zeros(n_items, int), np.full(n_items, 2), phi, free, np.zeros(n_items, bool), THETA,
                 np.zeros(40, int), [[0.0, 1.0]], [[False, False]], {})
    r = rng.uniform(0.0, 30.0, (n_items, THETA.size, 2))
    return pr, phi, r


def _num_grad_hess(f, x, h_grad=1e-6, h_hess=1e-3):
    """Central differences; the Hessian's larger step keeps the rounding of objectives ~1e4 (~1e-12 relative)
    far below its O(h^2) truncation error."""
    n = x.size
    g, hess = np.zeros(n), np.zeros((n, n))
    for i in range(n):
        e = np.zeros(n)
        e[i] = h_grad
        g[i] = (f(x + e) - f(x - e)) / (2 * h_grad)
        e[i] = h_hess
        for j in range(n):
            e2 = np.zeros(n)
            e2[j] = h_hess
            hess[i, j] = (f(x + e + e2) - f(x + e - e2) - f(x - e + e2) + f(x - e - e2)) / (4 * h_hess ** 2)
    return g, hess


@pytest.mark.parametrize("models", [["2pl"] * 4, ["3pl", "3pl", "4pl", "4pl"]])
def test_item_kernels_match_finite_differences_of_the_objective(models):
    pr, phi, r = _kernel_problem(models, 5)
    idx = np.arange(len(models))
    plain = models[0] == "2pl"
    assert pr._plain_rows.all() == plain and pr._asymptote_rows.all() == (not plain)
    objective = pr._plain_objective if plain else pr._asymptote_objective
    # the kernel objective is sum_qk r log P, P written out from the 4PL formula
    c, u = expit(phi[:, 2, None]), expit(phi[:, 3, None])
    p1 = c + (u - c) * expit(phi[:, :1] * THETA + phi[:, 1:2])
    direct = (r[:, :, 1] * np.log(p1) + r[:, :, 0] * np.log1p(-p1)).sum(axis=1)
    np.testing.assert_allclose(objective(phi, r, idx), direct, rtol=1e-12)
    if plain:
        grad, fisher = pr._plain_grad_curv(phi, r, idx=idx)
        neg_h = fisher  # logistic regression: the Fisher information is the negative Hessian
    else:
        grad, (fisher, neg_h) = pr._asymptote_grad_curv(phi, r, idx=idx)
    for i, m in enumerate(models):
        k = {"2pl": 2, "3pl": 3, "4pl": 4}[m]

        def f(v, i=i, k=k):
            row = phi[i:i + 1].copy()
            row[0, :k] = v
            return objective(row, r[i:i + 1], idx[i:i + 1])[0]

        g_num, h_num = _num_grad_hess(f, phi[i, :k])
        np.testing.assert_allclose(grad[i, :k], g_num, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(neg_h[i, :k, :k], -h_num, rtol=1e-4, atol=1e-4)
        # Fisher information: positive definite, the expected negative Hessian
        assert np.linalg.eigvalsh(fisher[i, :k, :k]).min() > 0


@pytest.mark.parametrize("models", [["2pl"] * 4, ["3pl", "3pl", "4pl", "4pl"]])
def test_mstep_stops_after_a_short_newton_step_within_the_tolerance(models):
    # a full Newton step shorter than sqrt(tol) ends an item without a confirming iteration: the result must still
    # be the maximum to ~tol, checked against Newton restarted from its own result until nothing moves
    pr, phi, _ = _kernel_problem(models, 7)
    probs = internal_log_prob(np.zeros(len(models), int), np.full(len(models), 2), phi, THETA)
    r = 200.0 * np.exp(probs) * np.exp(-0.5 * THETA ** 2)[None, :, None]  # counts the items fit nearly exactly
    r *= np.random.default_rng(8).uniform(0.9, 1.1, r.shape)
    start = phi + 0.05
    quick = pr.mstep_items(start, r)
    full = start
    for _ in range(4):
        full = pr.mstep_items(full, r, tol=0.0)
    np.testing.assert_allclose(quick[:, :2], full[:, :2], atol=1e-9)
    asym = np.isfinite(phi[:, 2:])
    np.testing.assert_allclose(quick[:, 2:][asym], full[:, 2:][asym], atol=1e-9)


def test_general_kernels_take_rows_narrower_than_the_count_array():
    # the M-step's active rows can all have fewer categories than the bank's widest item: the counts array keeps
    # the bank's width (its extra categories count nothing) and the kernels must read only the rows' own width
    from adaptive.calibration import kernels

    rng = np.random.default_rng(3)
    family = np.array([Family.GRADED, Family.PARTIAL_CREDIT])
    n_cat = np.array([3, 3])
    phi = np.array([[1.2, 0.8, -0.6, 0.0], [0.9, 0.3, -0.2, 0.0]])
    r3 = rng.uniform(0.0, 20.0, (2, THETA.size, 3))
    r5 = np.concatenate([r3, np.zeros((2, THETA.size, 2))], axis=2)
    np.testing.assert_allclose(kernels.general_objective(phi, r5, THETA, family, n_cat),
                               kernels.general_objective(phi, r3, THETA, family, n_cat), rtol=1e-14)
    for exact in (False, True):
        wide, narrow = (kernels.general_grad_curv(phi, r, THETA, family, n_cat, exact) for r in (r5, r3))
        np.testing.assert_allclose(wide[0], narrow[0], rtol=1e-14)
        np.testing.assert_allclose(np.asarray(wide[1]), np.asarray(narrow[1]), rtol=1e-14)


def test_mixed_bank_calibration_uses_every_kernel_and_converges():
    x, family, n_cat, _, _ = _mixed(2000, 0.3, 15, n_groups=1)
    models = ["2pl", "3pl", "graded", "gpcm"] * 3
    res = adaptive.calibrate(x, model=models, priors={"c": "beta(5, 17)"})
    pr = res.fitted.problem
    assert pr._plain_rows.sum() == 3 and pr._asymptote_rows.sum() == 3
    assert res.converged
    # the estimates are a stationary point of the marginal log-posterior: one more EM step moves nothing
    x_next = pr.em_map(res.fitted.x, pr.estep(res.fitted.x))
    assert np.abs(x_next - res.fitted.x).max() < 1e-3


def _posterior_in_child(conn):
    x, family, n_cat, phi, groups = _mixed(5000, 0.7, 16)
    pr = _problem(x, family, n_cat, phi, groups, "sparse")
    conn.send(pr.posterior(internal_log_prob(family, n_cat, phi, THETA), pr.params.latent0)[1])


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="fork start method only")
def test_threaded_estep_works_in_a_forked_child_after_the_parent_used_it():
    # a thread pool made in the parent has no threads in a forked child (Dask and multiprocessing workers);
    # the child must make its own instead of waiting forever on the parent's
    import multiprocessing as mp

    x, family, n_cat, phi, groups = _mixed(5000, 0.7, 16)
    pr = _problem(x, family, n_cat, phi, groups, "sparse")
    assert len(pr.layout.blocks) > 1
    ll = pr.posterior(internal_log_prob(family, n_cat, phi, THETA), pr.params.latent0)[1]
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_posterior_in_child, args=(child,))
    proc.start()
    proc.join(timeout=120)
    if proc.is_alive():
        proc.kill()
        pytest.fail("the E-step in the forked child hung")
    assert proc.exitcode == 0 and parent.recv() == pytest.approx(ll, abs=1e-9)


def test_loose_early_msteps_reach_the_maximum_of_exact_ones(monkeypatch):
    # EM's M-steps stop at a hundredth of the last EM change (EMSettings.mstep_tol): the fixed point must be the
    # one of M-steps run to 1e-12 every time
    s = EMSettings()
    assert s.mstep_tol(np.inf) == 1e-3 and s.mstep_tol(0.0) == pytest.approx(1e-7) and s.mstep_tol(1e-3) == 1e-5
    x, *_ = _mixed(2000, 0.3, 21, n_groups=1)
    fit = {"model": ["2pl", "3pl", "graded", "gpcm"] * 3, "priors": {"c": "beta(5, 17)"}, "tol": 1e-6}
    loose = adaptive.calibrate(x, **fit)

    class Exact(EMSettings):
        def mstep_tol(self, change):
            return 1e-12

    monkeypatch.setattr("adaptive.calibration.api.EMSettings", Exact)
    exact = adaptive.calibrate(x, **fit)
    assert loose.converged and exact.converged
    np.testing.assert_allclose(loose.fitted.x, exact.fitted.x, atol=2e-5)
    assert loose.loglik == pytest.approx(exact.loglik, abs=1e-4)


def test_pair_solve_equals_the_general_solve():
    from adaptive.calibration.kernels import solve_pair

    rng = np.random.default_rng(4)
    m = rng.normal(size=(30, 2, 5))
    mat = np.tile(np.eye(4), (30, 1, 1))
    mat[:, :2, :2] = m @ m.transpose(0, 2, 1) + 0.1 * np.eye(2)
    grad = np.zeros((30, 4))
    grad[:, :2] = rng.normal(size=(30, 2))
    fr = np.zeros((30, 4), bool)
    fr[:, :2] = True
    np.testing.assert_allclose(solve_pair(mat, grad, np.array([0, 1]), fr),
                               np.linalg.solve(mat, grad[:, :, None])[:, :, 0], rtol=1e-10, atol=1e-12)
    fr[3, 2] = True  # a row with a third free parameter: the general solve's job
    assert solve_pair(mat, grad, np.array([0, 1]), fr) is None
    fr[3, 2], mat[5, :2, :2] = False, [[1.0, 2.0], [2.0, 1.0]]  # not positive definite
    assert solve_pair(mat, grad, np.array([0, 1]), fr) is None


def test_node_sums_of_single_precision_weights_are_accurate():
    # eight nodes at a time in float32, the partial sums in float64: relative error ~1e-7, no drift over persons
    from adaptive.calibration.layout import _node_sums

    rng = np.random.default_rng(6)
    a = -np.abs(rng.standard_normal((61, 5000))) * 10
    e = np.exp(a - a.max(axis=0)).astype(np.float32)
    exact = e.astype(np.float64).sum(axis=0)
    s = _node_sums(e)
    assert s.dtype == np.float64
    np.testing.assert_allclose(s, exact, rtol=3e-7)
    assert abs(np.log(s).sum() - np.log(exact).sum()) < 1e-4
    np.testing.assert_array_equal(_node_sums(e[:10]), e[:10].astype(np.float64).sum(axis=0))


@pytest.mark.parametrize("missing", [0.0, 0.4])
def test_zero_one_data_layout_equals_the_definitions(missing):
    # 0/1 items only: the dense indicator block is the responses themselves (NaN -> 0)
    rng = np.random.default_rng(9)
    n_items = 9
    phi = np.column_stack([rng.uniform(0.7, 1.8, n_items), rng.normal(0, 1, n_items),
                           np.full(n_items, -np.inf), np.full(n_items, np.inf)])
    family, n_cat = np.zeros(n_items, int), np.full(n_items, 2)
    x = (rng.random((400, n_items)) < 0.6).astype(float)
    x[rng.random(x.shape) < missing] = np.nan
    groups = rng.integers(0, 2, 400)
    pr = _problem(x, family, n_cat, phi, groups, "dense")
    ll_ref, counts_ref = _direct(x, family, n_cat, phi, groups, pr.params.latent0)
    post, ll = pr.posterior(internal_log_prob(family, n_cat, phi, THETA), pr.params.latent0)
    assert ll == pytest.approx(ll_ref, abs=1e-8)
    r, _ = pr.counts(post, np.float64)
    np.testing.assert_allclose(r, counts_ref, atol=1e-10)
