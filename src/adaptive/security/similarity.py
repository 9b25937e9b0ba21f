"""Answer similarity: pairs of candidates (same site and window) who share too many identical wrong answers.

For candidates ``c`` and ``s`` and a dichotomous item ``i`` both took, the chance that both choose the same
wrong option ``k`` is ``p_i = Σ_k q_cik q_sik``, with ``q_jik = (1 - P_i(θ̂_j)) π_ik``: the model's
probability of a wrong answer at the candidate's ability times the share ``π_ik`` of wrong answers to item
``i`` that chose ``k`` (estimated from all candidates, with ½ added to each option). The number of identical
wrong answers ``h`` is then a sum of independent Bernoulli(``p_i``) variables over the common items, a
Poisson-binomial variable (the generalized binomial test of van der Linden & Sotaridona 2006, with identical
*incorrect* choices as in Wollack's 1997 ω). The p-value is its exact upper tail ``P(H >= h)``.

All pairs are scored at once: ``h`` and the expected count ``μ = Σ p_i`` are sparse matrix products over
(item, option) columns. Pairs whose Poisson(``μ``) tail is below ``screen`` (default 0.05) get the exact tail
by a recursion vectorized over pairs. The Poisson law is more dispersed than the Poisson-binomial with the same
mean, so its upper tail is the larger one where it matters; a pair that the screen drops has an exact p-value
far above any multiplicity-adjusted threshold. Raise ``screen`` (up to 1: every pair with a shared wrong
answer) to score more pairs exactly. Multiplicity: Bonferroni over all pairs compared (``correction="bonferroni"``,
family-wise false-positive rate ``alpha``) or Benjamini–Hochberg (``"bh"``, false-discovery rate).

The index assumes that which wrong option a candidate picks does not depend on ability beyond ``P_i(θ)``;
with few wrong answers per item, ``π`` is smoothed toward equal shares.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.stats import poisson

from ..answers import Records
from ..exceptions import ScoringError
from ..scoring.long_format import estimate_theta

__all__ = ["SimilarityResult", "answer_similarity", "poisson_binomial_sf"]

#: groups larger than this are refused (pairs grow as n²): split them by site and window
MAX_GROUP = 20_000


@dataclass(frozen=True)
class SimilarityResult:
    """Flagged and screened pairs (candidates ``a`` < ``b`` in record order).

    Attributes
    ----------
    person_a, person_b : ids of the pairs that passed the screen (exact p-values computed)
    group : their site/window label
    identical_wrong : ``h``; expected : ``μ``; common_items : items both took
    p_values : exact upper-tail p-values; p_adjusted : Bonferroni or BH adjusted over all pairs compared
    flagged : ``p_adjusted < alpha``
    n_pairs : pairs compared in all groups; alpha, correction : the stated rate and its control
    """

    person_a: tuple
    person_b: tuple
    group: tuple
    identical_wrong: np.ndarray
    expected: np.ndarray
    common_items: np.ndarray
    p_values: np.ndarray
    p_adjusted: np.ndarray
    flagged: np.ndarray
    n_pairs: int
    alpha: float
    correction: str

    def __len__(self) -> int:
        return len(self.person_a)

    def to_records(self) -> list[dict]:
        keys = ("person_a", "person_b", "group", "identical_wrong", "expected", "common_items", "p_values",
                "p_adjusted", "flagged")
        return [{k: (getattr(self, k)[i].item() if isinstance(getattr(self, k), np.ndarray) else getattr(self, k)[i])
                 for k in keys} for i in range(len(self))]


def poisson_binomial_sf(h, probs, lengths) -> np.ndarray:
    """``P(H >= h)`` for ``M`` Poisson-binomial variables: ``probs (M, L)`` padded, ``lengths (M,)`` used entries.

    The distribution is built by the recursion ``f_l(k) = f_{l-1}(k)(1 - p_l) + f_{l-1}(k - 1) p_l``, one step
    per position, vectorized over the ``M`` variables.
    """
    probs = np.asarray(probs, dtype=float)
    m, n_l = probs.shape
    h = np.asarray(h, dtype=np.int64)
    f = np.zeros((m, n_l + 2))
    f[:, 0] = 1.0
    used = np.arange(n_l)[None, :] < np.asarray(lengths)[:, None]
    for pos in range(n_l):
        p = np.where(used[:, pos], probs[:, pos], 0.0)[:, None]
        f[:, 1: pos + 2] = f[:, 1: pos + 2] * (1.0 - p) + f[:, : pos + 1] * p
        f[:, 0] *= (1.0 - p[:, 0])
    cdf_below = np.cumsum(f, axis=1)  # P(H <= k)
    idx = np.clip(h - 1, -1, n_l + 1)
    below = np.where(idx >= 0, np.take_along_axis(cdf_below, np.maximum(idx, 0)[:, None], axis=1)[:, 0], 0.0)
    return np.clip(1.0 - below, 0.0, 1.0)


def _option_shares(arrays, rec: Records, n_opt: int):
    """Key per item (the option most chosen by right answers) and wrong-option shares ``π (I, O)``."""
    n_i = rec.n_items
    known = rec.option >= 0
    right = known & (rec.category == 1)
    counts_right = np.zeros((n_i, n_opt))
    np.add.at(counts_right, (rec.item[right], rec.option[right]), 1.0)
    key = np.where(counts_right.sum(axis=1) > 0, counts_right.argmax(axis=1), -1)
    wrong = known & (rec.category == 0)
    counts = np.zeros((n_i, n_opt))
    np.add.at(counts, (rec.item[wrong], rec.option[wrong]), 1.0)
    offered = np.zeros((n_i, n_opt), dtype=bool)
    offered[rec.item[known], rec.option[known]] = True
    # options an item offers: those anyone chose, and at least every option up to the highest chosen
    highest = np.where(offered.any(axis=1), n_opt - 1 - np.argmax(offered[:, ::-1], axis=1), -1)
    offered = np.arange(n_opt)[None, :] <= highest[:, None]
    is_wrong = offered & (np.arange(n_opt)[None, :] != key[:, None])
    sm = np.where(is_wrong, counts + 0.5, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(sm.sum(axis=1, keepdims=True) > 0, sm / sm.sum(axis=1, keepdims=True), 0.0)
    return key, share


def answer_similarity(bank, records: Records, *, alpha: float = 0.01, correction: str = "bonferroni",
                      theta=None, screen: float = 0.05, by=("site", "window"),
                      max_group: int = MAX_GROUP) -> SimilarityResult:
    """Score every pair of candidates in the same group (default: same site and window); see the module docstring.

    Only dichotomous items with the chosen option known take part. ``theta``: abilities to condition on
    (default WLE from the records).
    """
    if correction not in ("bonferroni", "bh"):
        raise ScoringError(f"correction {correction!r}: use 'bonferroni' (family-wise) or 'bh' (false-discovery rate)")
    if not 0 < alpha < 1:
        raise ScoringError(f"alpha {alpha!r}: give the false-positive rate between 0 and 1 (e.g. 0.01)")
    arrays = bank.compile() if hasattr(bank, "compile") else bank
    use = (records.option >= 0) & (arrays.n_cat[records.item] == 2)
    if not use.any():
        raise ScoringError("no answer carries the option chosen; export the service's responses as JSON (they have "
                           "'option') to compare answers")
    rec = records.subset(use)
    if theta is None:
        theta = estimate_theta(arrays, records, "wle").theta
    theta = np.asarray(theta, dtype=float)
    n_opt = int(rec.option.max()) + 1
    key, share = _option_shares(arrays, rec, n_opt)
    tm = arrays.terms_at(np.nan_to_num(theta[rec.person]), rec.item)
    p_wrong = np.exp(tm.log_prob[:, 0])
    n = rec.n_persons
    col = rec.item * n_opt  # column of (item, option 0)
    # W: the wrong option chosen; Q: q for every wrong option of every item taken
    wrong = (rec.category == 0) & (rec.option != key[rec.item])
    w = sparse.csr_matrix((np.ones(int(wrong.sum())), (rec.person[wrong], (col + rec.option)[wrong])),
                          shape=(n, rec.n_items * n_opt))
    opts = np.arange(n_opt)
    q_val = p_wrong[:, None] * share[rec.item]  # (R, O)
    rows = np.repeat(rec.person, n_opt)
    cols = (col[:, None] + opts[None, :]).ravel()
    q = sparse.csr_matrix((q_val.ravel(), (rows, cols)), shape=(n, rec.n_items * n_opt))
    q.eliminate_zeros()
    took = sparse.csr_matrix((np.ones(rec.n_records), (rec.person, rec.item)), shape=(n, rec.n_items))
    agg = sparse.csr_matrix((np.ones(rec.n_items * n_opt), (np.arange(rec.n_items * n_opt),
                                                            np.repeat(np.arange(rec.n_items), n_opt))))
    # the groups: persons with answers, by their labels (site, window), as one sort
    present = np.unique(rec.person)
    label_cols = [np.asarray(getattr(records, b), dtype=str)[present] for b in by]
    key = label_cols[0]
    for c in label_cols[1:]:
        key = np.char.add(np.char.add(key, "\x1f"), c)
    _, group_of = np.unique(key, return_inverse=True)
    order = np.argsort(group_of.ravel(), kind="stable")
    bounds = np.flatnonzero(np.diff(group_of.ravel()[order])) + 1
    pa, pb, gl, hh, mu, common, pv = [], [], [], [], [], [], []
    n_pairs = 0
    for part in np.split(order, bounds):  # one sparse product per group
        m = present[part]
        label = tuple(c[part[0]] for c in label_cols)
        if m.size < 2:
            continue
        if m.size > max_group:
            where = " / ".join(f"{b} {v!r}" for b, v in zip(by, label, strict=True))
            raise ScoringError(f"{where}: {m.size} candidates in one group ({m.size * (m.size - 1) // 2:,} pairs); "
                               f"at most {max_group:,} are compared at once. Export sites and windows with the "
                               "responses, or compare a smaller group")
        n_pairs += m.size * (m.size - 1) // 2
        h = (w[m] @ w[m].T).tocoo()
        keep = h.row < h.col
        ii, jj, hv = h.row[keep], h.col[keep], h.data[keep]
        if ii.size == 0:
            continue
        qm = q[m]
        mu_pairs = np.asarray((qm @ qm.T).tocsr()[ii, jj]).ravel()
        pre = poisson.sf(hv - 1, np.maximum(mu_pairs, 1e-12))
        sel = pre < screen
        if not sel.any():
            continue
        ii, jj, hv, mu_pairs = ii[sel], jj[sel], hv[sel], mu_pairs[sel]
        probs = (qm[ii].multiply(qm[jj]) @ agg).tocsr()  # (M, I): p_i for each pair's common items
        tk = took[m]
        n_common = np.asarray(tk[ii].multiply(tk[jj]).sum(axis=1)).ravel()
        lengths = np.diff(probs.indptr)
        padded = np.zeros((probs.shape[0], max(int(lengths.max()), 1)))
        pos = np.arange(probs.nnz) - np.repeat(probs.indptr[:-1], lengths)
        padded[np.repeat(np.arange(probs.shape[0]), lengths), pos] = probs.data
        p_exact = poisson_binomial_sf(hv.astype(np.int64), padded, lengths)
        gname = " / ".join(str(v) for v in label)
        pa += [rec.person_ids[k] for k in m[ii]]
        pb += [rec.person_ids[k] for k in m[jj]]
        gl += [gname] * ii.size
        hh.append(hv)
        mu.append(mu_pairs)
        common.append(n_common)
        pv.append(p_exact)
    cat = (lambda parts, dt: np.concatenate(parts).astype(dt) if parts else np.zeros(0, dt))  # noqa: E731
    h_all, mu_all, c_all, p_all = cat(hh, np.int64), cat(mu, float), cat(common, np.int64), cat(pv, float)
    if correction == "bonferroni":
        adj = np.minimum(p_all * max(n_pairs, 1), 1.0)
    else:
        adj = _bh_with_unscreened(p_all, n_pairs)
    return SimilarityResult(person_a=tuple(pa), person_b=tuple(pb), group=tuple(gl), identical_wrong=h_all,
                            expected=mu_all, common_items=c_all, p_values=p_all, p_adjusted=adj, flagged=adj < alpha,
                            n_pairs=int(n_pairs), alpha=float(alpha), correction=correction)


def _bh_with_unscreened(p, n_total: int) -> np.ndarray:
    """BH q-values of the screened p-values when the other ``n_total - len(p)`` pairs all have larger p-values."""
    if p.size == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * n_total / np.arange(1, p.size + 1)
    q_sorted = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty_like(p)
    out[order] = np.minimum(q_sorted, 1.0)
    return out
