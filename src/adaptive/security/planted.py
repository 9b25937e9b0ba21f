"""Planted-cheating simulation through the real adaptive engine, for studying the security statistics.

Honest candidates answer from the IRT model (wrong answers pick a distractor with item-specific shares) and
take ``ln t = β_i - τ_j + ε/α_i`` seconds (van der Linden's model). Planted among them:

* **pre-knowledge**: a share of candidates know a leaked share of the items and answer those right and fast
  (their time on a leaked item is ``fast_factor`` × the model time);
* **copiers**: each copier sits beside a source at the same site and copies the source's chosen option on an
  item both are given (with probability ``copy_rate``); sources are tested first, so the copier's adaptive
  path follows the copied answers;
* **rapid guessers**: on a random share of their items they answer at random among the options within a few
  seconds;
* **proxy-like speed change**: on a random half of their items the candidate works at another speed (τ moved
  by ``proxy_shift``) and another ability (θ moved by ``proxy_shift``), as when a second person takes over.

Everything goes through :func:`~adaptive.cat.posthoc.simulate_cat` (post-hoc on the full answer matrix), so
item selection reacts to the planted answers as a live exam would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._random import as_generator
from ..answers import Records
from ..cat.posthoc import simulate_cat
from ..synthetic import simulate_responses

__all__ = ["PlantedStudy", "plant_cheating", "detection_rates", "LABELS"]

LABELS = ("honest", "preknowledge", "copier", "source", "rapid", "proxy")


@dataclass(frozen=True)
class PlantedStudy:
    """What :func:`plant_cheating` made.

    Attributes
    ----------
    records : the administered answers with options, seconds, sites and one window
    label : ``(N,)`` str -- one of :data:`LABELS` per candidate
    leaked : ``(I,)`` bool -- the leaked items
    pairs : ``(P, 2)`` int -- (copier, source) candidate indices
    theta, speed : ``(N,)`` true ability and speed
    intensity, discrimination : ``(I,)`` true time parameters
    result : the engine's :class:`~adaptive.cat.state.CatResult`
    """

    records: Records
    label: np.ndarray
    leaked: np.ndarray
    pairs: np.ndarray
    theta: np.ndarray
    speed: np.ndarray
    intensity: np.ndarray
    discrimination: np.ndarray
    result: object


def plant_cheating(design, bank, n: int = 2000, *, rng=0, preknowledge: float = 0.05, leaked: float = 0.10,
                   copiers: float = 0.02, rapid: float = 0.03, proxy: float = 0.02, site_size: int = 20,
                   n_options: int = 4, fast_factor: float = 0.3, copy_rate: float = 0.9, rapid_share: float = 0.5,
                   proxy_shift: float = 1.0, speed_sd: float = 0.3, window: str = "W1",
                   window_start: float = 1_793_491_200.0, window_days: float = 30.0,
                   leak_day: float | None = None) -> PlantedStudy:
    """Simulate ``n`` candidates of one testing window with planted cheating; see the module docstring.

    Candidates start at even intervals over ``window_days`` from ``window_start`` (POSIX seconds; default
    2026-11-01 UTC) and answer one item after another, so ``answered_at`` is known. With ``leak_day``,
    pre-knowledge exists only among candidates who start after that day of the window (the items leaked then).
    """
    gen = as_generator(rng)
    arrays = bank.compile()
    n_items = arrays.n_items
    theta = gen.normal(size=n)
    tau = gen.normal(0.0, speed_sd, size=n)
    beta = gen.normal(np.log(70.0), 0.35, size=n_items)  # about a minute per coding item
    alpha = gen.uniform(1.5, 2.5, size=n_items)
    key = gen.integers(0, n_options, size=n_items)
    shares = gen.dirichlet(np.full(n_options - 1, 2.0), size=n_items)  # distractor shares, in distractor order

    # who does what (disjoint groups; copiers are paired with a source at their own site)
    begin = window_start + np.arange(n) * (window_days * 86400.0 / max(n, 1))
    perm = gen.permutation(n)
    counts = [int(round(f * n)) for f in (preknowledge, rapid, proxy, copiers)]
    label = np.full(n, "honest", dtype=object)
    eligible = perm if leak_day is None else perm[begin[perm] >= window_start + leak_day * 86400.0]
    label[eligible[: counts[0]]] = "preknowledge"  # with a leak day, only candidates who start after it
    rest = perm[label[perm] == "honest"]
    start = 0
    for name, k in zip(("rapid", "proxy", "copier"), counts[1:], strict=True):
        label[rest[start:start + k]] = name
        start += k
    site = np.arange(n) // max(site_size, 2)
    copier_idx = np.flatnonzero(label == "copier")
    pairs = []
    for c in copier_idx:  # a handful of pairs: pick an honest neighbour at the same site as source
        mates = np.flatnonzero((site == site[c]) & (label == "honest"))
        if mates.size:
            s = int(gen.choice(mates))
            label[s] = "source"
            pairs.append((int(c), s))
    pair_arr = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    leak = np.zeros(n_items, dtype=bool)
    leak[gen.choice(n_items, size=int(round(leaked * n_items)), replace=False)] = True

    # full answer, option and time matrices (the engine reads the cells of the items it gives)
    x = simulate_responses(arrays, theta, rng=gen)
    is_proxy = label == "proxy"
    half = gen.random((n, n_items)) < 0.5
    if is_proxy.any():
        x_alt = simulate_responses(arrays, theta[is_proxy] + proxy_shift, rng=gen)
        x[is_proxy] = np.where(half[is_proxy], x_alt, x[is_proxy])
    log_t = beta[None, :] - tau[:, None] + gen.normal(size=(n, n_items)) / alpha[None, :]
    log_t[is_proxy] -= np.where(half[is_proxy], proxy_shift, 0.0)
    pk = label == "preknowledge"
    x[np.ix_(pk, leak)] = 1.0
    log_t[np.ix_(pk, leak)] += np.log(fast_factor)
    rg = (label == "rapid")[:, None] & (gen.random((n, n_items)) < rapid_share)
    guess = gen.integers(0, n_options, size=(n, n_items))
    x = np.where(rg, (guess == key[None, :]).astype(float), x)
    log_t = np.where(rg, gen.normal(np.log(3.0), 0.3, size=(n, n_items)), log_t)
    distractor = (gen.random((n, n_items))[:, :, None] > np.cumsum(shares, axis=1)[None, :, :-1]).sum(axis=2)
    wrong_opt = np.where(distractor >= key[None, :], distractor + 1, distractor)  # skip the key
    option = np.where(x == 1, key[None, :], np.where(rg, guess, wrong_opt))
    seconds = np.exp(log_t)

    seeds = gen.integers(0, 2**31, size=n)
    first = np.flatnonzero(label != "copier")
    runs = [(first, _run(design, bank, x, seeds, first))]
    if pair_arr.size:
        pos = np.full(n, -1)
        pos[first] = np.arange(first.size)
        seq_first = runs[0][1].sequence
        for c, s in pair_arr:  # the copier sees the source's answers to the items the source was given
            took = seq_first[pos[s]][seq_first[pos[s]] >= 0]
            copy = took[gen.random(took.size) < copy_rate]
            x[c, copy] = x[s, copy]
            option[c, copy] = option[s, copy]
        later = np.flatnonzero(label == "copier")
        runs.append((later, _run(design, bank, x, seeds, later)))
    width = max(r.sequence.shape[1] for _, r in runs)
    seq = np.full((n, width), -1, dtype=np.int64)
    scored = np.zeros((n, width), dtype=bool)
    for rows, r in runs:
        seq[rows, : r.sequence.shape[1]] = r.sequence
        scored[rows, : r.scored.shape[1]] = r.scored
    given = seq >= 0
    took = np.where(given, seconds[np.arange(n)[:, None], np.maximum(seq, 0)], 0.0)
    at = begin[:, None] + np.cumsum(took, axis=1)  # each answer when its item's time is up
    keep = given & scored
    person, step = np.nonzero(keep)
    item = seq[person, step]
    rec = Records(person=person.astype(np.int64), item=item, category=x[person, item].astype(np.int64),
                  option=option[person, item].astype(np.int64), seconds=seconds[person, item],
                  answered_at=at[person, step], person_ids=tuple(f"C{j + 1:05d}" for j in range(n)),
                  n_items=n_items, site=tuple(f"site-{s + 1:03d}" for s in site), window=(window,) * n)
    return PlantedStudy(records=rec, label=label.astype(str), leaked=leak, pairs=pair_arr, theta=theta, speed=tau,
                        intensity=beta, discrimination=alpha, result=runs[0][1])


def _run(design, bank, x, seeds, rows):
    return simulate_cat(design, bank, responses=x[rows], seed=[int(s) for s in seeds[rows]])


def detection_rates(study: PlantedStudy, report, *, fpr: float = 0.01, confidence: float = 0.95) -> list[dict]:
    """Detection rate of each statistic for each planted behaviour, at the threshold that flags ``fpr`` of the
    honest candidates (the empirical ``1 - fpr`` quantile among them), with a Wilson interval for the Monte
    Carlo error; plus the report's own flags (any reason, at its stated rates) and copier pairs found by
    answer similarity. ``report`` is :func:`adaptive.security.report.analyse`'s result on ``study.records``.
    """
    from scipy.stats import binomtest

    c = report.candidates
    scores = {"lz* (low)": -c.lz_star, "l_t (high)": c.lt_z, "pre-knowledge z (high)": c.z_preknowledge,
              "response-time effort (low)": -c.effort}
    honest = study.label == "honest"
    rows = []

    def row(method, cls, hits, n, threshold):
        ci = binomtest(int(hits), int(n)).proportion_ci(confidence, method="wilson") if n else None
        rows.append({"method": method, "behaviour": cls, "n": int(n), "detected": int(hits),
                     "rate": hits / n if n else float("nan"), "ci_low": ci.low if ci else float("nan"),
                     "ci_high": ci.high if ci else float("nan"), "threshold": threshold})

    for method, s in scores.items():
        s = np.where(np.isfinite(s), s, -np.inf)
        thr = float(np.quantile(s[honest], 1.0 - fpr, method="higher"))
        for cls in LABELS:
            sel = study.label == cls
            if sel.any():
                row(method, cls, (s[sel] > thr).sum(), sel.sum(), thr)
    flagged = c.flagged()
    for cls in LABELS:
        sel = study.label == cls
        if sel.any():
            row("any flag of the report", cls, flagged[sel].sum(), sel.sum(), float("nan"))
    if report.similarity is not None and study.pairs.size:
        ids = study.records.person_ids
        truth = {tuple(sorted((ids[a], ids[b]))) for a, b in study.pairs}
        found = {tuple(sorted(p)) for p, f in zip(zip(report.similarity.person_a, report.similarity.person_b),
                                                 report.similarity.flagged, strict=True) if f}
        row("answer similarity (pairs)", "copier pair", len(truth & found), len(truth), report.similarity.alpha)
        row("answer similarity (pairs)", "other pairs", len(found - truth), report.similarity.n_pairs - len(truth),
            report.similarity.alpha)
    return rows
