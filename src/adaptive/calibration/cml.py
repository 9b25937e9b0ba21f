"""Rasch and partial-credit item parameters by conditional maximum likelihood (CML), with Andersen's LR test.

Given a person's raw score ``r`` on the items ``S`` they answered, the Rasch model's pattern probability no
longer involves θ: ``P(x | r, S) = exp(-Σ_i x_i b_i) / γ_r(ε_S)`` with ``ε_i = exp(-b_i)`` and ``γ_r`` the
elementary symmetric function of order ``r`` (Andersen 1970; Fischer & Molenaar 1995, ch. 3). The
conditional log-likelihood ``Σ_j [-Σ_i x_ij b_i - log γ_{r_j}(ε_{S_j})]`` is maximized by Newton's method with
its exact Hessian, built from the ESFs with one and two items left out:

* gradient: ``∂/∂b_i = Σ_j (π_ij - x_ij)`` with ``π_ij = ε_i γ_{r-1}(S∖i) / γ_r(S)``;
* Hessian: ``-Σ_j Cov(x_i, x_k | r)`` with ``P(x_i = x_k = 1 | r) = ε_i ε_k γ_{r-2}(S∖{i,k}) / γ_r(S)``.

The partial credit model (Masters 1982) is the same with categories: ``ε_ik = exp(-Σ_{v<=k} δ_iv)`` for the
steps ``δ_i1..δ_im``, ``γ_r`` the coefficients of ``Π_i Σ_k ε_ik t^k`` (one convolution per item), and
``P(x_i = k | r) = ε_ik γ_{r-k}(S∖i) / γ_r``; the Rasch model is its two-category case. The constraint is on all
steps together (their sum, or the first step at 0).

Persons with a zero or perfect score carry no information and are left out. Missing data are a mask: persons
are grouped by the set of items they answered, and each group brings its own ESFs (fast for fixed forms and
linked forms; an adaptive test gives every person their own set, which is slower). The scale is fixed by
``normalization="sum"`` (difficulties sum to zero, the default) or ``"first"`` (the first item at 0). SEs come
from the inverse negative Hessian under that constraint.

Andersen's (1973) test splits the persons by raw score (``split="median"``: at or below the median vs above;
or ``"score"``: every score group) and compares the separate fits: ``LR = 2 (Σ_g log L_g - log L)``, χ² with
``(G - 1)(P - 1)`` degrees of freedom (``P`` the number of item parameters: ``I`` for the Rasch model).

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> b = np.linspace(-1.5, 1.5, 8)
>>> theta = rng.normal(size=3000)
>>> x = (rng.random((3000, 8)) < 1 / (1 + np.exp(-(theta[:, None] - b)))).astype(float)
>>> fit = fit_cml(x)
>>> bool(np.abs(fit.difficulty - b).max() < 4 * fit.se.max()), fit.converged
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import chi2

from ..exceptions import CalibrationError
from ..tables import Table

__all__ = ["CMLResult", "AndersenTest", "fit_cml", "elementary_symmetric", "esf_polytomous"]


def elementary_symmetric(eps: np.ndarray) -> np.ndarray:
    """ESFs ``γ_0..γ_L`` of each row of ``eps (M, L)`` (zeros drop an item out): ``(M, L + 1)``, by the
    summation algorithm ``γ_r(k) = γ_r(k-1) + ε_k γ_{r-1}(k-1)``, vectorized over the rows."""
    eps = np.atleast_2d(eps)
    m, n_l = eps.shape
    g = np.zeros((m, n_l + 1))
    g[:, 0] = 1.0
    for k in range(n_l):
        g[:, 1: k + 2] = g[:, 1: k + 2] + eps[:, k: k + 1] * g[:, : k + 1]
    return g


@dataclass(frozen=True)
class AndersenTest:
    """Andersen's likelihood-ratio test of the Rasch model across raw-score groups."""

    statistic: float
    df: int
    p_value: float
    groups: int
    split: str

    def __repr__(self) -> str:
        return (f"AndersenTest(LR = {self.statistic:.3f}, df = {self.df}, p = {self.p_value:.4g}; {self.groups} "
                f"groups by {self.split})")


@dataclass(frozen=True)
class CMLResult(Table):
    """A Rasch calibration by CML.

    Attributes
    ----------
    item_id; difficulty, se : ``b`` and its SE under the normalization
    loglik : the conditional log-likelihood; n_iter, converged
    n_persons : persons with information (not zero or perfect); normalization : "sum" or "first"
    """

    key = "item_id"
    column_names = ("item_id", "difficulty", "se")
    item_id: tuple
    difficulty: np.ndarray
    se: np.ndarray
    loglik: float
    n_iter: int
    converged: bool
    n_persons: int
    normalization: str
    model: str = "rasch"
    steps: np.ndarray | None = field(default=None, repr=False)
    steps_se: np.ndarray | None = field(default=None, repr=False)
    _data: tuple = field(default=(), repr=False)

    def __repr__(self) -> str:
        ok = "converged" if self.converged else "NOT converged"
        kind = "Rasch" if self.model == "rasch" else "partial credit"
        return (f"CMLResult({kind}, {len(self.item_id)} items, {self.n_persons} persons with information; conditional "
                f"logLik {self.loglik:.3f}; {ok} in {self.n_iter} Newton steps)")

    def summary(self) -> str:
        if self.steps is None:
            lines = [repr(self), "  item          b        SE"]
            lines += [f"  {i:<12} {b:8.4f} {s:8.4f}" for i, b, s in zip(self.item_id, self.difficulty, self.se)]
        else:
            assert self.steps_se is not None
            lines = [repr(self), "  item          steps (SE)"]
            for i, st, se in zip(self.item_id, self.steps, self.steps_se, strict=True):
                cells = [f"{v:+.3f} ({e:.3f})" for v, e in zip(st, se, strict=True) if np.isfinite(v)]
                lines.append(f"  {i:<12} " + "  ".join(cells))
        return "\n".join(lines)

    def bank(self, name: str = "cml"):
        """The items as a Rasch :class:`~adaptive.bank.ItemBank` (slope 1, the CML difficulties)."""
        from ..bank import ItemBank

        if self.steps is None:
            return ItemBank(name=name, items=[{"id": i, "model": "rasch", "a": 1.0, "b": float(b)}
                                              for i, b in zip(self.item_id, self.difficulty, strict=True)])
        return ItemBank(name=name, items=[{"id": i, "model": "pcm", "a": 1.0,
                                           "thresholds": [float(v) for v in st if np.isfinite(v)]}
                                          for i, st in zip(self.item_id, self.steps, strict=True)])

    def andersen_test(self, split: str = "median") -> AndersenTest:
        """Andersen's LR test (see the module docstring)."""
        x, mask = self._data
        score = np.where(mask, x, 0).sum(axis=1)
        top = (x.max(axis=0)[None, :] * mask).sum(axis=1)
        informative = (score > 0) & (score < top)
        if split == "median":
            cut = np.median(score[informative])
            group = np.where(score <= cut, 0, 1)
        elif split == "score":
            group = score
        else:
            raise CalibrationError(f"split={split!r}: use 'median' or 'score'")
        total = 0.0
        used = 0
        for g in np.unique(group[informative]):
            rows = informative & (group == g)
            if (mask[rows].sum(axis=0) == 0).any():
                continue  # an item nobody in the group answered: the group cannot be fitted alone
            sub_x = np.where(mask[rows], x[rows], np.nan)
            if self.model == "pcm" and (np.nanmax(sub_x, axis=0) < x.max(axis=0)).any():
                continue  # a category nobody in the group reached: the group cannot be fitted alone
            sub = fit_cml(sub_x, item_ids=self.item_id, model=self.model, normalization="sum", _need_se=False)
            total += sub.loglik
            used += 1
        if used < 2:
            raise CalibrationError("Andersen's test needs at least two raw-score groups that answered every item")
        stat = max(2.0 * (total - self.loglik), 0.0)
        n_par = len(self.item_id) if self.steps is None else int(np.isfinite(self.steps).sum())
        df = (used - 1) * (n_par - 1)
        return AndersenTest(statistic=float(stat), df=int(df), p_value=float(chi2.sf(stat, df)), groups=used,
                            split=split)


def esf_polytomous(eps: np.ndarray) -> np.ndarray:
    """ESFs of polytomous items: ``eps (M, L, K)`` with ``eps[..., i, k]`` the weight of category ``k`` of item
    ``i`` (``eps[..., 0]`` must be 1; zeros for categories an item lacks) -> ``(M, S + 1)`` with ``S = L (K - 1)``, the
    coefficients of ``Π_i Σ_k eps_ik t^k``, by one convolution per item vectorized over the rows."""
    m, n_l, n_k = eps.shape
    top = n_l * (n_k - 1)
    g = np.zeros((m, top + 1))
    g[:, 0] = 1.0
    reach = 0
    for i in range(n_l):
        # eps[:, i, 0] is 1 (category 0 is the reference): g keeps its terms; the others are added from the old
        # coefficients, all computed before any is added
        terms = [g[:, : reach + 1] * eps[:, i, k: k + 1] for k in range(1, n_k)]
        for k, t in enumerate(terms, start=1):
            g[:, k: reach + k + 1] += t
        reach += n_k - 1
    return g


def _pattern_terms(eps_s: np.ndarray, scores: np.ndarray, counts: np.ndarray, sums: np.ndarray):
    """Log-likelihood, gradient and Hessian in ``η_ik = -log eps_ik`` (``k >= 1``) of one answered-item set.

    ``eps_s (L, K)``; ``counts[r]`` persons with score r; ``sums (L, K)`` persons choosing each category.
    Returns ``ll``, ``grad (L, K)`` and ``hess (L, K, L, K)`` (category 0 rows are zero).
    """
    n_l, n_k = eps_s.shape
    g = esf_polytomous(eps_s[None])[0]
    r = scores
    with np.errstate(divide="ignore"):
        eta = np.where(eps_s > 0, -np.log(np.where(eps_s > 0, eps_s, 1.0)), 0.0)
    ll = -float(np.sum(sums[:, 1:] * eta[:, 1:])) - float(np.sum(counts[r] * np.log(g[r])))
    kk = np.arange(n_k)
    drop = np.zeros((n_l, n_l, n_k))
    drop[:, :, 0] = 1.0  # a dropped item contributes the factor 1
    one = np.where(np.eye(n_l, dtype=bool)[:, :, None], drop, eps_s[None])  # row i: item i dropped
    loo = esf_polytomous(one)  # (L, S + 1)
    shift = r[None, None, :] - kk[None, :, None]  # r - k
    ok = (shift >= 0)
    pk = eps_s[:, :, None] * np.where(ok, loo[np.arange(n_l)[:, None, None], np.maximum(shift, 0)],
                                      0.0) / g[r][None, None, :]  # P(x_i = k | r): (L, K, R)
    expected = pk @ counts[r]  # (L, K)
    grad = expected - sums
    grad[:, 0] = 0.0
    idx = np.arange(n_l)
    two = np.broadcast_to(eps_s, (n_l, n_l, n_l, n_k)).copy()
    two[idx, :, idx] = drop[0, 0]
    two[:, idx, idx] = drop[0, 0]
    g2 = esf_polytomous(two.reshape(n_l * n_l, n_l, n_k)).reshape(n_l, n_l, -1)  # (L, L, S + 1)
    sh2 = r[None, None, :] - kk[:, None, None] - kk[None, :, None]  # (K, K, R): r - k - m
    ok2 = sh2 >= 0
    g2r = np.where(ok2[None, None], g2[:, :, np.maximum(sh2, 0)], 0.0)  # (L, L, K, K, R)
    pkm = (eps_s[:, None, :, None, None] * eps_s[None, :, None, :, None] * g2r / g[r])  # (L, L, K, K, R)
    cov = pkm - pk[:, None, :, None, :] * pk[None, :, None, :, :]
    same = pk[:, :, None, :] * (np.eye(n_k)[None, :, :, None]) - pk[:, :, None, :] * pk[:, None, :, :]  # (L, K, K, R)
    cov[idx, idx] = same
    hess = -(cov @ counts[r])  # (L, L, K, K)
    hess[:, :, 0, :] = 0.0
    hess[:, :, :, 0] = 0.0
    return ll, grad, hess.transpose(0, 2, 1, 3)


def fit_cml(responses, *, item_ids=None, model: str = "rasch", normalization: str = "sum", tol: float = 1e-8,
            max_iter: int = 100, _need_se: bool = True) -> CMLResult:
    """CML of the Rasch model (0/1 items) or the partial credit model (categories 0..m_i); see the module
    docstring. ``responses``: an ``(N, I)`` matrix of categories with NaN for not administered."""
    if normalization not in ("sum", "first"):
        raise CalibrationError(f"normalization={normalization!r}: use 'sum' (difficulties sum to 0) or 'first'")
    if model not in ("rasch", "pcm"):
        raise CalibrationError(f"model={model!r}: CML fits 'rasch' (0/1 items) or 'pcm' (partial credit)")
    x = np.asarray(responses, dtype=float)
    if x.ndim != 2 or x.shape[1] < 2:
        raise CalibrationError(f"responses have shape {x.shape}; CML needs a persons × items matrix with 2+ items")
    mask = np.isfinite(x)
    vals = np.where(mask, x, 0.0)
    bad_cells = mask & ((vals < 0) | (vals != np.round(vals)) | ((vals > 1) if model == "rasch" else False))
    if bad_cells.any():
        rows, cols = np.nonzero(bad_cells)
        raise CalibrationError(f"row {rows[0]}, item {cols[0]}: {x[rows[0], cols[0]]!r} is not "
                               + ("0 or 1; CML with model='rasch' fits 0/1 items (model='pcm' for more categories)"
                                  if model == "rasch" else "a category 0, 1, 2, ..."))
    vals = vals.astype(int)
    n_items = x.shape[1]
    ids = tuple(item_ids) if item_ids is not None else tuple(f"item{k + 1}" for k in range(n_items))
    m_i = vals.max(axis=0) if model == "pcm" else np.ones(n_items, dtype=int)
    n_k = int(m_i.max()) + 1
    score = vals.sum(axis=1)
    top = (m_i[None, :] * mask).sum(axis=1)
    informative = (score > 0) & (score < top)
    cat_counts = np.zeros((n_items, n_k))
    for k in range(n_k):  # per category: one sum over persons
        cat_counts[:, k] = ((vals == k) & mask & informative[:, None]).sum(axis=0)
    gaps = [ids[i] for i in range(n_items) if (cat_counts[i, : m_i[i] + 1] == 0).any()]
    if gaps:
        raise CalibrationError(f"{len(gaps)} item(s) have a category nobody with information chose, e.g. {gaps[:5]}"
                               + (": their CML difficulty is infinite (answered all right or all wrong)"
                                  if model == "rasch" else "") + "; drop them (or recode the categories) and refit")
    keys, inverse = np.unique(mask[informative], axis=0, return_inverse=True)
    inverse = inverse.ravel()
    xs, ss = vals[informative], score[informative]
    groups = []
    for g, key in enumerate(keys):  # per answered-item set (one for a fixed form)
        rows = inverse == g
        items = np.flatnonzero(key)
        counts = np.bincount(ss[rows], minlength=int(m_i[items].sum()) + 1).astype(float)
        sums = np.stack([(xs[rows][:, items] == k).sum(axis=0) for k in range(n_k)], axis=1).astype(float)
        groups.append((items, np.flatnonzero(counts), counts, sums))
    # parameters: steps δ_ik (k = 1..m_i), packed item by item; η_ik = Σ_{v<=k} δ_iv
    steps_of = [(i, k) for i in range(n_items) for k in range(1, int(m_i[i]) + 1)]
    n_p = len(steps_of)
    to_eta = np.zeros((n_items, n_k, n_p))
    for p_idx, (i, k) in enumerate(steps_of):  # the cumulative map, once
        to_eta[i, k:, p_idx] = 1.0
    to_eta[np.arange(n_k)[None, :] > m_i[:, None]] = 0.0  # categories an item lacks
    with np.errstate(divide="ignore"):
        start = np.log(np.maximum(cat_counts[:, :-1], 0.5) / np.maximum(cat_counts[:, 1:], 0.5))
    delta = np.array([start[i, k - 1] for i, k in steps_of])
    delta -= delta.mean()
    valid = np.arange(n_k)[None, :] <= m_i[:, None]

    def evaluate(dv):
        eta = to_eta @ dv
        eps = np.where(valid, np.exp(-eta), 0.0)
        ll, grad_eta = 0.0, np.zeros((n_items, n_k))
        hess_eta = np.zeros((n_items, n_k, n_items, n_k))
        for items, scores, counts, sums in groups:
            l_g, gr_g, h_g = _pattern_terms(eps[items], scores, counts, sums)
            ll += l_g
            grad_eta[items] += gr_g
            hess_eta[np.ix_(items, np.arange(n_k), items, np.arange(n_k))] += h_g
        flat = to_eta.reshape(n_items * n_k, n_p)
        return ll, flat.T @ grad_eta.ravel(), flat.T @ hess_eta.reshape(n_items * n_k, -1) @ flat

    jac = np.zeros((n_p, n_p - 1))
    jac[np.arange(1, n_p), np.arange(n_p - 1)] = 1.0
    if normalization == "sum":
        jac[0, :] = -1.0
    converged = False
    n_steps = 0
    ll, grad, hess = evaluate(delta)
    for _ in range(max_iter):
        n_steps += 1
        step = np.linalg.solve(jac.T @ hess @ jac, -(jac.T @ grad))
        new = delta + jac @ step
        new_ll, new_grad, new_hess = evaluate(new)
        shrink = 0
        while new_ll < ll - 1e-10 and shrink < 30:  # step halving keeps the ascent
            step /= 2
            new = delta + jac @ step
            new_ll, new_grad, new_hess = evaluate(new)
            shrink += 1
        delta, ll, grad, hess = new, new_ll, new_grad, new_hess
        if np.max(np.abs(step)) < tol:
            converged = True
            break
    if normalization == "first":
        delta = delta - delta[0]
    se = np.full(n_p, np.nan)
    if _need_se:
        cov = jac @ np.linalg.inv(-(jac.T @ hess @ jac)) @ jac.T
        se = np.sqrt(np.maximum(np.diag(cov), 0.0))
        if normalization == "first":
            se[0] = 0.0
    steps = np.full((n_items, n_k - 1), np.nan)
    steps_se = np.full((n_items, n_k - 1), np.nan)
    for p_idx, (i, k) in enumerate(steps_of):
        steps[i, k - 1], steps_se[i, k - 1] = delta[p_idx], se[p_idx]
    location = np.nanmean(steps, axis=1)
    loc_se = steps_se[:, 0] if model == "rasch" else np.full(n_items, np.nan)
    return CMLResult(item_id=ids, difficulty=location, se=loc_se, loglik=float(ll), n_iter=n_steps,
                     converged=converged, n_persons=int(informative.sum()), normalization=normalization, model=model,
                     steps=steps if model == "pcm" else None, steps_se=steps_se if model == "pcm" else None,
                     _data=(np.where(mask, vals, 0), mask))
