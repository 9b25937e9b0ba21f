"""Standard errors of MML estimates: observed information (Oakes), cross-product, sandwich.

Oakes (1999) writes the observed information of the marginal likelihood as
``-[∂²Q(φ'|φ)/∂φ'² + ∂²Q(φ'|φ)/∂φ'∂φ]`` at ``φ' = φ``. Both terms are computed
here exactly, not by numerical differentiation of EM steps: the first is the
complete-data information from the expected counts, the second equals the sum
over persons of the posterior covariance of the complete-data score
(Louis 1982), ``Σ_n Cov(S_n | x_n)``. With per-person, per-node scores
``S[n, q, :]`` this is one weighted Gram product per chunk of persons.

* ``oakes`` (default): ``cov = I_obs^-1`` (with priors, the log-prior Hessian is added);
* ``crossprod``: ``cov = (Σ_n s_n s_n^T)^-1`` with ``s_n`` the per-person marginal score;
* ``sandwich``: ``cov = I_obs^-1 (Σ_n s_n s_n^T) I_obs^-1``.

IRT-scale errors (``b = -delta/a``, ``c = expit(gamma)``, GPCM steps) follow by the delta method.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..exceptions import CalibrationError
from ..irt.mixed import internal_log_prob_and_grad, irt_jacobian
from ..irt.registry import model_spec
from ..tables import Table
from .priors import prior_terms

__all__ = ["StandardErrors", "information_matrices", "standard_errors"]

METHODS = ("oakes", "crossprod", "sandwich")


@dataclass(frozen=True)
class StandardErrors(Table):
    """Standard errors of one calibration, on the IRT scale by the delta method.

    Attributes
    ----------
    method : "oakes", "crossprod" or "sandwich"
    names : names of the free (internal) parameters, in the order of ``covariance``
    covariance : (P, P) covariance of the free internal parameters
    item_id : (I,) item ids
    a, b, c, d : (I,) standard errors of each item's a, b (dichotomous), c and d; NaN where the parameter is
        fixed or the model does not have it
    thresholds : (I, K-1) standard errors of graded thresholds / GPCM steps (NaN elsewhere)
    items : {item id: {"a": se, "b": se, ...}} -- the same numbers for estimated parameters only
    latent : {"<group> mean" / "<group> sd": se}

    ``ses["Q17"]`` is ``ses.items["Q17"]``; ``to_records()``, ``to_csv()`` and ``to_frame()`` give one row
    per item with ``a, b, c, d`` and ``b1..``.
    """

    key = "item_id"
    method: str
    names: tuple
    covariance: np.ndarray
    item_id: tuple
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    d: np.ndarray
    thresholds: np.ndarray
    items: dict
    latent: dict

    def columns(self) -> dict:
        cols = {"item_id": self.item_id, "a": self.a, "b": self.b, "c": self.c, "d": self.d}
        for t in range(self.thresholds.shape[1]):
            if np.isfinite(self.thresholds[:, t]).any():
                cols[f"b{t + 1}"] = self.thresholds[:, t]
        return cols

    @property
    def internal(self) -> np.ndarray:
        return np.sqrt(np.diag(self.covariance))

    def __getitem__(self, item_id: str) -> dict:
        if item_id not in self.items:
            near = [i for i in self.item_id if str(item_id).lower() == str(i).lower()]
            hint = f"; did you mean {near[0]!r}?" if near else ""
            listed = ", ".join(map(str, self.item_id[:5])) + (", ..." if len(self.item_id) > 5 else "")
            raise KeyError(f"no standard errors for item {item_id!r}{hint} (items: {listed}; fixed items have none)")
        return self.items[item_id]


def _param_layout(problem):
    """Per (item, internal column) the index of the free parameter it maps to (-1 = fixed)."""
    n_i, p = problem.params.phi0.shape
    where = np.full((n_i, p), -1)
    flat = where.ravel()
    flat[problem.params.free_idx] = np.arange(problem.params.n_item_free)
    where = flat.reshape(n_i, p)
    if problem.params.has_tie:
        where[problem.params.tied, 0] = problem.params.n_item_free
    return where


def _latent_scores(problem, latent, h=1e-5):
    """d log w_gq / d(mu, log sd): (G, Q, 2) and second derivatives (G, Q, 2, 2), numerically (smooth, tiny)."""
    psi = np.column_stack([latent[:, 0], np.log(latent[:, 1])])

    def lw(ps):
        return problem.log_weights(np.column_stack([ps[:, 0], np.exp(ps[:, 1])]))

    d1 = np.zeros(psi.shape[:1] + (problem.theta.size, 2))
    d2 = np.zeros(psi.shape[:1] + (problem.theta.size, 2, 2))
    base = lw(psi)
    for a in range(2):
        ea = np.zeros(2)
        ea[a] = h
        up, dn = lw(psi + ea), lw(psi - ea)
        d1[..., a] = (up - dn) / (2 * h)
        d2[..., a, a] = (up - 2 * base + dn) / h ** 2
        for b in range(a + 1, 2):
            eb = np.zeros(2)
            eb[b] = h
            v = (lw(psi + ea + eb) - lw(psi + ea - eb) - lw(psi - ea + eb) + lw(psi - ea - eb)) / (4 * h * h)
            d2[..., a, b] = d2[..., b, a] = v
    return d1, d2


def information_matrices(problem, x, chunk_elems=4_000_000):
    """Observed information (Oakes/Louis, including the log prior) and the cross-product matrix at ``x``."""
    phi, latent = problem.params.unpack(x)
    n_free = problem.params.n_free
    logp, grad = internal_log_prob_and_grad(problem.family, problem.n_cat, phi, problem.theta)
    post, _ = problem.posterior(logp, latent)
    r, g_mass = problem.counts(post)
    where = _param_layout(problem)
    n_i, p = phi.shape
    # ---- complete-data information: items (numerical derivative of the analytic score tables)
    info = np.zeros((n_free, n_free))
    h = 1e-6
    hess_item = np.zeros((n_i, p, p))
    for col in range(p):
        if not (where[:, col] >= 0).any():
            continue
        e = np.zeros(p)
        e[col] = h
        _, gp = internal_log_prob_and_grad(problem.family, problem.n_cat, phi + e, problem.theta)
        _, gm = internal_log_prob_and_grad(problem.family, problem.n_cat, phi - e, problem.theta)
        with np.errstate(invalid="ignore"):
            dg = (gp - gm) / (2 * h)
        dg = np.nan_to_num(dg)
        hess_item[:, :, col] = np.einsum("iqk,iqkp->ip", r, dg)
    hess_item = 0.5 * (hess_item + hess_item.transpose(0, 2, 1))
    if problem.priors:
        _, _, ph = prior_terms(problem.priors, problem.family, problem.n_cat, phi, problem.params.prior_free)
        hess_item = hess_item + ph
    for i in range(n_i):  # scatter per-item blocks (few params per item)
        cols = np.flatnonzero(where[i] >= 0)
        if cols.size:
            idx = where[i, cols]
            np.add.at(info, (idx[:, None], idx[None, :]), -hess_item[i][np.ix_(cols, cols)])
    # ---- latent part
    lat_cols = []
    pos = problem.params.n_item_free + int(problem.params.has_tie)
    for g in range(problem.layout.n_groups):
        for a in range(2):
            if problem.params.latent_free[g, a]:
                lat_cols.append((g, a, pos))
                pos += 1
    d1, d2 = _latent_scores(problem, latent)
    for g, a, ja in lat_cols:
        for g2, b, jb in lat_cols:
            if g2 == g:
                info[ja, jb] -= g_mass[g] @ d2[g, :, a, b]
    # ---- Louis correction: sum_n Cov_post(S_n), and the cross-product of per-person scores
    # score columns: every free or tied (item, column) pair, then the latent parameters
    pairs = np.argwhere(where >= 0)  # (P_items, 2): item, column
    target = where[pairs[:, 0], pairs[:, 1]]
    g_sel = grad[pairs[:, 0], :, :, pairs[:, 1]].transpose(0, 2, 1)  # (P_items, K, Q)
    cat = problem.layout.category[:, pairs[:, 0]]
    msk = problem.layout.mask[:, pairs[:, 0]]
    n_q = problem.theta.size
    n = problem.layout.n_persons
    ess = np.zeros((n_free, n_free))
    xpd = np.zeros((n_free, n_free))
    step = max(1, chunk_elems // max(1, n_q * n_free))
    to_free = np.zeros((pairs.shape[0], n_free))
    to_free[np.arange(pairs.shape[0]), target] = 1.0
    rows_p = np.arange(pairs.shape[0])[None, :]
    for start in range(0, n, step):
        sl = slice(start, min(n, start + step))
        s_items = g_sel[rows_p, cat[sl]] * msk[sl][:, :, None]  # (n_c, P_items, Q)
        s = np.einsum("njq,jf->nqf", s_items, to_free) if problem.params.has_tie else None
        if s is None:
            s = np.zeros((s_items.shape[0], n_q, n_free))
            s[:, :, target] = s_items.transpose(0, 2, 1)
        for g, a, j in lat_cols:
            in_g = problem.layout.groups[sl] == g
            s[in_g, :, j] = d1[g, :, a][None, :]
        w = post[sl]
        sw = s * np.sqrt(w)[:, :, None]
        flat = sw.reshape(-1, n_free)
        ess += flat.T @ flat
        sbar = np.einsum("nq,nqf->nf", w, s)
        xpd += sbar.T @ sbar
    observed = info - ess + xpd
    observed = 0.5 * (observed + observed.T)
    return observed, xpd


def _inverse(mat, names, what):
    vals, vecs = np.linalg.eigh(mat)
    if vals[0] <= 1e-10 * max(abs(vals[-1]), 1e-300):
        k = int(np.argmax(np.abs(vecs[:, 0])))
        raise CalibrationError(
            f"the {what} matrix is not positive definite (smallest eigenvalue {vals[0]:.3g}); the data hardly inform "
            f"{names[k]!r}: standard errors are undefined. Add a prior (e.g. priors='3pl' for c), fix that item, "
            "or use a simpler model")
    return (vecs / vals) @ vecs.T


def standard_errors(result, method="oakes") -> StandardErrors:
    if method not in METHODS:
        raise CalibrationError(f"unknown standard-error method {method!r}; choose one of {list(METHODS)}")
    problem, x = result.fitted.problem, result.fitted.x
    names = tuple(problem.params.names(result.item_ids))
    observed, xpd = information_matrices(problem, x)
    if method == "crossprod":
        cov = _inverse(xpd, names, "cross-product")
    else:
        cov = _inverse(observed, names, "observed information")
        if method == "sandwich":
            cov = cov @ xpd @ cov
    phi, latent = problem.params.unpack(x)
    where = _param_layout(problem)
    n_i, p = phi.shape
    safe = np.where(where >= 0, where, 0)
    block = cov[safe[:, :, None], safe[:, None, :]] * ((where >= 0)[:, :, None] & (where >= 0)[:, None, :])
    jac = irt_jacobian(problem.family, problem.n_cat, phi)  # (I, p + 2, p)
    irt_cov = jac @ block @ jac.transpose(0, 2, 1)
    irt_se = np.sqrt(np.maximum(np.diagonal(irt_cov, axis1=1, axis2=2), 0.0))
    items = {}
    n_thr = max(int(problem.n_cat.max()) - 1, 1)
    col = {name: np.full(n_i, np.nan) for name in ("a", "b", "c", "d")}
    thr_se = np.full((n_i, n_thr), np.nan)
    for i, iid in enumerate(result.item_ids):
        if not (where[i] >= 0).any():
            continue
        m = result.models[i]
        k = int(problem.n_cat[i]) - 1
        entry = {}
        if where[i, 0] >= 0:
            entry["a"] = float(irt_se[i, 0])
        if model_spec(m).dichotomous:
            entry["b"] = float(irt_se[i, 1])
            if where[i, 2] >= 0:
                entry["c"] = float(irt_se[i, p])
            if where[i, 3] >= 0:
                entry["d"] = float(irt_se[i, p + 1])
        else:
            for t in range(k):
                entry[f"b{t + 1}"] = float(irt_se[i, 1 + t])
                thr_se[i, t] = irt_se[i, 1 + t]
        for name in ("a", "b", "c", "d"):
            if name in entry:
                col[name][i] = entry[name]
        items[iid] = entry
    lat = {}
    pos = problem.params.n_item_free + int(problem.params.has_tie)
    for g, label in enumerate(result.group_labels):
        for a, what in enumerate(("mean", "sd")):
            if problem.params.latent_free[g, a]:
                se = float(np.sqrt(cov[pos, pos]))
                lat[f"{label} {what}"] = se * (latent[g, 1] if a == 1 else 1.0)  # sd = exp(log sd)
                pos += 1
    return StandardErrors(method=method, names=names, covariance=cov, item_id=tuple(result.item_ids), a=col["a"],
                          b=col["b"], c=col["c"], d=col["d"], thresholds=thr_se, items=items, latent=lat)
