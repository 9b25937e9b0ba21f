"""Rasch item difficulties by conditional maximum likelihood (CML), with Andersen's likelihood-ratio test.

Given a person's raw score ``r`` on the items ``S`` they answered, the Rasch model's pattern probability no
longer involves θ: ``P(x | r, S) = exp(-Σ_i x_i b_i) / γ_r(ε_S)`` with ``ε_i = exp(-b_i)`` and ``γ_r`` the
elementary symmetric function of order ``r`` (Andersen 1970; Fischer & Molenaar 1995, ch. 3). The
conditional log-likelihood ``Σ_j [-Σ_i x_ij b_i - log γ_{r_j}(ε_{S_j})]`` is maximized by Newton's method with
its exact Hessian, built from the ESFs with one and two items left out:

* gradient: ``∂/∂b_i = Σ_j (π_ij - x_ij)`` with ``π_ij = ε_i γ_{r-1}(S∖i) / γ_r(S)``;
* Hessian: ``-Σ_j Cov(x_i, x_k | r)`` with ``P(x_i = x_k = 1 | r) = ε_i ε_k γ_{r-2}(S∖{i,k}) / γ_r(S)``.

Persons with a zero or perfect score carry no information and are left out. Missing data are a mask: persons
are grouped by the set of items they answered, and each group brings its own ESFs (fast for fixed forms and
linked forms; an adaptive test gives every person their own set, which is slower). The scale is fixed by
``normalization="sum"`` (difficulties sum to zero, the default) or ``"first"`` (the first item at 0). SEs come
from the inverse negative Hessian under that constraint.

Andersen's (1973) test splits the persons by raw score (``split="median"``: at or below the median vs above;
or ``"score"``: every score group) and compares the separate fits: ``LR = 2 (Σ_g log L_g - log L)``, χ² with
``(G - 1)(I - 1)`` degrees of freedom.

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

from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2

from ..exceptions import CalibrationError
from ..tables import Table

__all__ = ["CMLResult", "AndersenTest", "fit_cml", "elementary_symmetric"]


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
    _data: tuple = ()

    def __repr__(self) -> str:
        ok = "converged" if self.converged else "NOT converged"
        return (f"CMLResult(Rasch, {len(self.item_id)} items, {self.n_persons} persons with information; conditional "
                f"logLik {self.loglik:.3f}; {ok} in {self.n_iter} Newton steps)")

    def summary(self) -> str:
        lines = [repr(self), "  item          b        SE"]
        lines += [f"  {i:<12} {b:8.4f} {s:8.4f}" for i, b, s in zip(self.item_id, self.difficulty, self.se)]
        return "\n".join(lines)

    def bank(self, name: str = "cml"):
        """The items as a Rasch :class:`~adaptive.bank.ItemBank` (slope 1, the CML difficulties)."""
        from ..bank import ItemBank

        return ItemBank(name=name, items=[{"id": i, "model": "rasch", "a": 1.0, "b": float(b)}
                                          for i, b in zip(self.item_id, self.difficulty, strict=True)])

    def andersen_test(self, split: str = "median") -> AndersenTest:
        """Andersen's LR test (see the module docstring)."""
        x, mask = self._data
        score = np.where(mask, x, 0).sum(axis=1)
        n_ans = mask.sum(axis=1)
        informative = (score > 0) & (score < n_ans)
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
            sub = fit_cml(np.where(mask[rows], x[rows], np.nan), item_ids=self.item_id, normalization="sum",
                          _need_se=False)
            total += sub.loglik
            used += 1
        if used < 2:
            raise CalibrationError("Andersen's test needs at least two raw-score groups that answered every item")
        stat = max(2.0 * (total - self.loglik), 0.0)
        df = (used - 1) * (len(self.item_id) - 1)
        return AndersenTest(statistic=float(stat), df=int(df), p_value=float(chi2.sf(stat, df)), groups=used,
                            split=split)


def _pattern_terms(eps_s: np.ndarray, scores: np.ndarray, counts: np.ndarray, sums: np.ndarray, need_hessian: bool):
    """Log-likelihood, gradient (in b) and Hessian contributions of one answered-item set.

    ``eps_s (L,)``; ``counts[r]`` persons with score r; ``sums (L,)`` right answers per item in the group.
    """
    n_l = eps_s.size
    g = elementary_symmetric(eps_s[None, :])[0]
    r = scores
    ll = -float(np.sum(sums * -np.log(eps_s))) - float(np.sum(counts[r] * np.log(g[r])))
    # leave-one-out ESFs: row i has ε_i = 0
    loo = elementary_symmetric(np.where(np.eye(n_l, dtype=bool), 0.0, eps_s[None, :]))  # (L, L + 1)
    pi = eps_s[:, None] * loo[:, np.maximum(r - 1, 0)] / g[r][None, :]  # (L, scores)
    expected = pi @ counts[r]
    grad = expected - sums  # d ll / d b_i = Σ (π - x)
    hess = None
    if need_hessian:
        # leave-two-out ESFs for every pair (i, k): rows i*L + k
        two = np.broadcast_to(eps_s, (n_l, n_l, n_l)).copy()
        idx = np.arange(n_l)
        two[idx, :, idx] = 0.0
        two[:, idx, idx] = 0.0
        g2 = elementary_symmetric(two.reshape(n_l * n_l, n_l)).reshape(n_l, n_l, n_l + 1)
        pik = (eps_s[:, None, None] * eps_s[None, :, None] * g2[:, :, np.maximum(r - 2, 0)]
               * (r >= 2)[None, None, :] / g[r][None, None, :])  # (L, L, scores)
        cov = pik - pi[:, None, :] * pi[None, :, :]
        cov[idx, idx, :] = (pi * (1 - pi))
        hess = -(cov @ counts[r])  # d² ll / d b_i d b_k
    return ll, grad, hess


def fit_cml(responses, *, item_ids=None, normalization: str = "sum", tol: float = 1e-8, max_iter: int = 100,
            _need_se: bool = True) -> CMLResult:
    """CML difficulties of the dichotomous Rasch model; see the module docstring.

    ``responses``: an ``(N, I)`` matrix of 0/1 with NaN for not administered.
    """
    if normalization not in ("sum", "first"):
        raise CalibrationError(f"normalization={normalization!r}: use 'sum' (difficulties sum to 0) or 'first'")
    x = np.asarray(responses, dtype=float)
    if x.ndim != 2 or x.shape[1] < 2:
        raise CalibrationError(f"responses have shape {x.shape}; CML needs a persons × items matrix with 2+ items")
    mask = np.isfinite(x)
    vals = np.where(mask, x, 0.0)
    if not np.isin(vals[mask], (0.0, 1.0)).all():
        rows, cols = np.nonzero(mask & ~np.isin(vals, (0.0, 1.0)))
        raise CalibrationError(f"row {rows[0]}, item {cols[0]}: {x[rows[0], cols[0]]!r} is not 0 or 1; CML here fits "
                               "the dichotomous Rasch model")
    n_items = x.shape[1]
    ids = tuple(item_ids) if item_ids is not None else tuple(f"item{k + 1}" for k in range(n_items))
    score = vals.sum(axis=1).astype(int)
    n_ans = mask.sum(axis=1)
    informative = (score > 0) & (score < n_ans)
    right = (vals * informative[:, None]).sum(axis=0)
    wrong = ((1 - vals) * mask * informative[:, None]).sum(axis=0)
    bad = [ids[i] for i in np.flatnonzero((right == 0) | (wrong == 0))]
    if bad:
        raise CalibrationError(f"{len(bad)} item(s) answered all right or all wrong by the persons with information, "
                               f"e.g. {bad[:5]}: their CML difficulty is infinite; drop them and refit")
    # group persons by the set of items answered
    keys, inverse = np.unique(mask[informative], axis=0, return_inverse=True)
    inverse = inverse.ravel()
    xs, ss = vals[informative], score[informative]
    groups = []
    for g, key in enumerate(keys):  # per answered-item set (one for a fixed form)
        rows = inverse == g
        items = np.flatnonzero(key)
        counts = np.bincount(ss[rows], minlength=items.size + 1).astype(float)
        scores = np.flatnonzero(counts)
        groups.append((items, scores, counts, xs[rows][:, items].sum(axis=0)))
    b = -np.log(np.maximum(right, 0.5) / np.maximum(wrong, 0.5))
    b -= b.mean()

    def evaluate(bv):
        eps = np.exp(-bv)
        ll, grad = 0.0, np.zeros(n_items)
        hess = np.zeros((n_items, n_items))
        for items, scores, counts, sums in groups:
            l_g, gr_g, h_g = _pattern_terms(eps[items], scores, counts, sums, True)
            ll += l_g
            grad[items] += gr_g
            hess[np.ix_(items, items)] += h_g
        return ll, grad, hess

    free = np.arange(1, n_items)  # b_0 is determined by the constraint
    converged = False
    n_steps = 0
    ll, grad, hess = evaluate(b)
    for _ in range(max_iter):
        n_steps += 1
        # Newton in the free parameters with b_0 = -Σ others (sum) or 0 (first)
        jac = np.zeros((n_items, n_items - 1))
        jac[free, np.arange(n_items - 1)] = 1.0
        if normalization == "sum":
            jac[0, :] = -1.0
        g_f = jac.T @ grad
        h_f = jac.T @ hess @ jac
        step = np.linalg.solve(h_f, -g_f)
        new = b + jac @ step
        new_ll, new_grad, new_hess = evaluate(new)
        shrink = 0
        while new_ll < ll - 1e-10 and shrink < 30:  # step halving keeps the ascent
            step /= 2
            new = b + jac @ step
            new_ll, new_grad, new_hess = evaluate(new)
            shrink += 1
        b, ll, grad, hess = new, new_ll, new_grad, new_hess
        if np.max(np.abs(step)) < tol:
            converged = True
            break
    if normalization == "first":
        b = b - b[0]
    se = np.full(n_items, np.nan)
    if _need_se:
        jac = np.zeros((n_items, n_items - 1))
        jac[free, np.arange(n_items - 1)] = 1.0
        if normalization == "sum":
            jac[0, :] = -1.0
        cov_f = np.linalg.inv(-(jac.T @ hess @ jac))
        cov = jac @ cov_f @ jac.T
        se = np.sqrt(np.maximum(np.diag(cov), 0.0))
        if normalization == "first":
            se[0] = 0.0
    return CMLResult(item_id=ids, difficulty=b, se=se, loglik=float(ll), n_iter=n_steps, converged=converged,
                     n_persons=int(informative.sum()), normalization=normalization, _data=(vals, mask))
