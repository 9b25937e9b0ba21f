"""Classical item analysis: difficulty, discrimination, distractors, reliability -- from raw choices.

For every item, over the candidates who answered it:

* **p-value**: the mean item score divided by the item's maximum score (the proportion right for 0/1 items).
* **Discrimination**: the Pearson correlation of the item score with a criterion -- on a fixed form (every
  candidate answered every item) the *rest score* (total minus the item: the corrected point-biserial); on
  adaptive or otherwise incomplete data, where summed scores are not comparable, the candidate's ability
  estimate (WLE θ̂ on all answers), labelled ``criterion = "theta"``.
* **Options** (when the chosen options are known): the share choosing each option overall and in three
  ability groups (the lower 27%, the middle, the upper 27% of the criterion; Kelley 1939), the mean criterion
  of its choosers and the option's point-biserial (choosing it vs the criterion).
* **Flags**: ``miskey?`` -- a distractor whose point-biserial is positive and above the key's, or chosen by
  more upper-group candidates than the key; ``negative discrimination`` -- the key's correlation below 0;
  ``low discrimination`` -- below ``low_r`` (default 0.15); ``non-functioning distractor X`` -- chosen by
  fewer than ``min_share`` (default 5%) of the candidates; ``too easy`` / ``too hard`` -- p above 0.95 or
  below 0.20 (fixed forms only: adaptive tests target p near 0.5 by design). Items with fewer than ``min_n``
  answers (default 50) are reported but not flagged.
* **Reliability** (fixed forms): coefficient alpha (KR-20 when every item is 0/1) and the standard error of
  measurement ``SD × sqrt(1 - alpha)``.

Examples
--------
>>> import numpy as np
>>> from adaptive.synthetic import synthetic_bank, simulate_responses
>>> bank = synthetic_bank(20, model="2pl", rng=1)
>>> x = simulate_responses(bank.compile(), np.random.default_rng(2).normal(size=500), rng=3)
>>> res = item_analysis(bank, x)
>>> res.criterion, round(float(res.alpha), 2)
('rest score', 0.78)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..answers import Records
from ..exceptions import ResponseValidationError
from ..tables import Table

__all__ = ["ItemAnalysis", "OptionAnalysis", "ClassicalAnalysis", "item_analysis", "write_html"]

#: Kelley's (1939) extreme groups: the lower and upper 27% of the criterion
GROUP_SHARE = 0.27


@dataclass(frozen=True)
class ItemAnalysis(Table):
    """One row per item that was answered.

    Attributes
    ----------
    item_id; n : answers; p_value : mean score / maximum score; r : discrimination (see ``criterion``)
    p_upper, p_lower : p-value in the upper and lower 27% groups; d : their difference
    key : the keyed option ("" when options are unknown); flags : "; "-joined reasons ("" when none)
    """

    key = "item_id"
    item_id: tuple
    n: np.ndarray
    p_value: np.ndarray
    r: np.ndarray
    p_upper: np.ndarray
    p_lower: np.ndarray
    d: np.ndarray
    key_option: tuple
    flags: tuple


@dataclass(frozen=True)
class OptionAnalysis(Table):
    """One row per (item, option) chosen at least once or offered.

    Attributes
    ----------
    item_id, option : letters A, B, ...; is_key
    share, share_lower, share_middle, share_upper : proportion choosing it, overall and by group
    mean_criterion : mean criterion of its choosers; r : option point-biserial
    """

    key = "item_id"
    item_id: tuple
    option: tuple
    is_key: np.ndarray
    n: np.ndarray
    share: np.ndarray
    share_lower: np.ndarray
    share_middle: np.ndarray
    share_upper: np.ndarray
    mean_criterion: np.ndarray
    r: np.ndarray


@dataclass(frozen=True)
class ClassicalAnalysis:
    """Classical item analysis of a response set.

    Attributes
    ----------
    items : :class:`ItemAnalysis`; options : :class:`OptionAnalysis` (``None`` without chosen options)
    criterion : "rest score" (fixed form) or "theta" (incomplete data)
    alpha, sem : coefficient alpha (KR-20 for 0/1 items) and its SEM (NaN on incomplete data)
    n_persons, n_items : counts; mean_score, sd_score : summed scores (fixed forms)
    """

    items: ItemAnalysis
    options: OptionAnalysis | None
    criterion: str
    alpha: float
    sem: float
    n_persons: int
    n_items: int
    mean_score: float
    sd_score: float
    traces: np.ndarray | None = None
    trace_groups: int = 5

    def flagged(self) -> ItemAnalysis:
        """The rows of items with a flag."""
        keep = np.array([bool(f) for f in self.items.flags])
        cols: dict = {k: (tuple(np.asarray(v, dtype=object)[keep]) if isinstance(v, tuple) else v[keep])
                      for k, v in self.items.columns().items()}
        return ItemAnalysis(**cols)

    def summary(self) -> str:
        lines = [f"{self.n_persons} candidates, {self.n_items} items answered; discrimination against the "
                 f"{self.criterion}"]
        if np.isfinite(self.alpha):
            lines.append(f"  coefficient alpha {self.alpha:.3f}, SEM {self.sem:.2f} score points (mean "
                         f"{self.mean_score:.2f}, SD {self.sd_score:.2f})")
        flagged = sum(1 for f in self.items.flags if f)
        lines.append(f"  {flagged} item(s) flagged")
        return "\n".join(lines)


def _corr_by_group(group, x, y, n_groups):
    """Pearson correlation of ``x`` and ``y`` within each group (bincount sums), ``(G,)``."""
    cnt = np.bincount(group, minlength=n_groups).astype(float)

    def s(v):
        return np.bincount(group, weights=v, minlength=n_groups)

    with np.errstate(invalid="ignore", divide="ignore"):
        mx, my = s(x) / cnt, s(y) / cnt
        cov = s(x * y) / cnt - mx * my
        vx = s(x * x) / cnt - mx * mx
        vy = s(y * y) / cnt - my * my
        return np.where((vx > 1e-12) & (vy > 1e-12), cov / np.sqrt(np.maximum(vx * vy, 1e-300)), np.nan)


def item_analysis(bank, responses, *, theta=None, min_share: float = 0.05, low_r: float = 0.15,
                  min_n: int = 50) -> ClassicalAnalysis:
    """Classical item analysis; see the module docstring.

    Parameters
    ----------
    bank : ItemBank (or compiled ItemArrays)
    responses : :class:`~adaptive.answers.Records` (the service export, with options) or an ``(N, I)`` matrix
        of categories with NaN for not administered
    theta : ``(N,)`` criterion abilities for incomplete data (default: WLE on all answers)
    min_n : items with fewer answers are reported but not flagged (their statistics are too noisy to judge)
    """
    arrays = bank.compile() if hasattr(bank, "compile") else bank
    rec = responses if isinstance(responses, Records) else Records.from_matrix(bank, responses)
    if rec.n_records == 0:
        raise ResponseValidationError("no answers to analyse; give responses with at least one answered item")
    n, n_i = rec.n_persons, rec.n_items
    answered = rec.answered()
    max_score = (arrays.n_cat - 1).astype(float)
    score = rec.category.astype(float)
    n_item = np.bincount(rec.item, minlength=n_i)
    complete = rec.n_records == n * int((n_item > 0).sum())  # a fixed form: everyone answered every item given
    total = rec.per_person(score)
    if complete:
        criterion = total[rec.person] - score  # the rest score of each answer
        crit_person = total
        label = "rest score"
    else:
        if theta is None:
            from ..scoring.long_format import estimate_theta

            theta = estimate_theta(arrays, rec, "wle").theta
        crit_person = np.asarray(theta, dtype=float)
        criterion = crit_person[rec.person]
        label = "theta"
    with np.errstate(invalid="ignore", divide="ignore"):
        p_value = np.bincount(rec.item, weights=score, minlength=n_i) / n_item / max_score
    r = _corr_by_group(rec.item, score, criterion, n_i)
    # ability groups from the persons' criterion (total score or θ̂): lower and upper 27%
    ok = np.isfinite(crit_person) & (answered > 0)
    lo_cut, hi_cut = np.quantile(crit_person[ok], [GROUP_SHARE, 1 - GROUP_SHARE]) if ok.any() else (0.0, 0.0)
    grp_person = np.where(crit_person <= lo_cut, 0, np.where(crit_person >= hi_cut, 2, 1))
    grp = grp_person[rec.person]
    gidx = rec.item * 3 + grp
    g_n = np.bincount(gidx, minlength=n_i * 3).reshape(n_i, 3)
    g_s = np.bincount(gidx, weights=score, minlength=n_i * 3).reshape(n_i, 3)
    with np.errstate(invalid="ignore", divide="ignore"):
        g_p = g_s / g_n / max_score[:, None]
    options = None
    traces = None
    key_letter = [""] * n_i
    opt_flags: list[list[str]] = [[] for _ in range(n_i)]
    if (rec.option >= 0).any():
        options, key_idx = _options(rec, arrays.ids, grp, criterion, score, max_score, _offered(bank, n_i))
        traces = _traces(rec, crit_person, ok, n_i)
        for i in range(n_i):  # per-item flags read the option table (an edge: text per item)
            if key_idx[i] >= 0:
                key_letter[i] = chr(ord("A") + int(key_idx[i]))
        rows = np.flatnonzero(~options.is_key)
        item_pos = {iid: k for k, iid in enumerate(arrays.ids)}
        key_r = {options.item_id[k]: options.r[k] for k in np.flatnonzero(options.is_key)}
        key_up = {options.item_id[k]: options.share_upper[k] for k in np.flatnonzero(options.is_key)}
        rival: list[list[str]] = [[] for _ in range(n_i)]
        dead: list[list[str]] = [[] for _ in range(n_i)]
        for k in rows:
            i = item_pos[options.item_id[k]]
            letter = options.option[k]
            kr = key_r.get(options.item_id[k], np.nan)
            if (np.isfinite(options.r[k]) and options.r[k] > 0 and (not np.isfinite(kr) or options.r[k] > kr)) or \
                    options.share_upper[k] > key_up.get(options.item_id[k], np.inf):
                rival[i].append(letter)
            if options.share[k] < min_share:
                dead[i].append(f"{letter} ({options.share[k]:.0%})")
        for i in range(n_i):
            if rival[i]:
                opt_flags[i].append(f"miskey? ({', '.join(rival[i])} discriminating better than the key or chosen "
                                    "more by the upper group)")
            if dead[i]:
                opt_flags[i].append(f"non-functioning distractor {', '.join(dead[i])}")
    flags = []
    for i in range(n_i):
        f = []
        if n_item[i] < min_n:  # too few answers to judge an item
            flags.append("")
            continue
        if np.isfinite(r[i]) and r[i] < 0:
            f.append(f"negative discrimination (r = {r[i]:.2f})")
        elif np.isfinite(r[i]) and r[i] < low_r:
            f.append(f"low discrimination (r = {r[i]:.2f})")
        if complete and p_value[i] > 0.95:
            f.append(f"too easy (p = {p_value[i]:.2f})")
        if complete and p_value[i] < 0.20:
            f.append(f"too hard (p = {p_value[i]:.2f})")
        flags.append("; ".join(f + opt_flags[i]))
    seen = n_item > 0
    ids = tuple(arrays.ids[i] for i in np.flatnonzero(seen))
    items = ItemAnalysis(item_id=ids, n=n_item[seen], p_value=p_value[seen], r=r[seen], p_upper=g_p[seen, 2],
                         p_lower=g_p[seen, 0], d=(g_p[:, 2] - g_p[:, 0])[seen],
                         key_option=tuple(key_letter[i] for i in np.flatnonzero(seen)),
                         flags=tuple(flags[i] for i in np.flatnonzero(seen)))
    alpha = sem = mean = sd = float("nan")
    if complete and n_i > 1 and n > 1:
        item_var = np.bincount(rec.item, weights=score ** 2, minlength=n_i) / n - (
            np.bincount(rec.item, weights=score, minlength=n_i) / n) ** 2
        var_total = float(np.var(total))
        if var_total > 0:
            alpha = float(n_i / (n_i - 1) * (1 - item_var.sum() / var_total))
            sem = float(np.sqrt(var_total) * np.sqrt(max(1 - alpha, 0.0)))
        mean, sd = float(total.mean()), float(np.sqrt(var_total))
    return ClassicalAnalysis(items=items, options=options, criterion=label, alpha=alpha, sem=sem,
                             n_persons=int((answered > 0).sum()), n_items=int(seen.sum()), mean_score=mean,
                             sd_score=sd, traces=None if traces is None else traces[seen])


def _traces(rec: Records, crit_person, ok, n_i: int, groups: int = 5) -> np.ndarray:
    """Share choosing each option in ``groups`` equal-count groups of the criterion: ``(I, O, G)``."""
    edges = np.quantile(crit_person[ok], np.linspace(0, 1, groups + 1)[1:-1]) if ok.any() else np.zeros(groups - 1)
    g = np.searchsorted(edges, crit_person, side="right")[rec.person]
    known = rec.option >= 0
    n_opt = int(rec.option[known].max()) + 1
    cell = (rec.item[known] * n_opt + rec.option[known]) * groups + g[known]
    cnt = np.bincount(cell, minlength=n_i * n_opt * groups).reshape(n_i, n_opt, groups).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return cnt / cnt.sum(axis=1, keepdims=True)


def _offered(bank, n_i: int) -> np.ndarray:
    """Options each item offers, from the bank's authored content (0 where the bank has no content)."""
    out = np.zeros(n_i, dtype=np.int64)
    for i, it in enumerate(getattr(bank, "items", ())):  # the edge: per-item content objects
        content = getattr(it, "content", None)
        if content is not None and getattr(content, "options", None):
            out[i] = len(content.options)
    return out


def _options(rec: Records, item_ids, grp, criterion, score, max_score, offered):
    """The option table, and the key of each item (the option of the right answers; -1 when unknown)."""
    known = rec.option >= 0
    n_i = len(item_ids)
    n_opt = max(int(rec.option[known].max()) + 1, int(offered.max(initial=0)))
    item, opt, g = rec.item[known], rec.option[known], grp[known]
    right = score[known] == max_score[item]
    key_counts = np.bincount(item[right] * n_opt + opt[right], minlength=n_i * n_opt).reshape(n_i, n_opt)
    key_idx = np.where(key_counts.sum(axis=1) > 0, key_counts.argmax(axis=1), -1)
    cell = item * n_opt + opt
    cnt = np.bincount(cell, minlength=n_i * n_opt).reshape(n_i, n_opt).astype(float)
    n_item = cnt.sum(axis=1, keepdims=True)
    g_cnt = np.bincount(cell * 3 + g, minlength=n_i * n_opt * 3).reshape(n_i, n_opt, 3).astype(float)
    g_tot = np.bincount(item * 3 + g, minlength=n_i * 3).reshape(n_i, 1, 3).astype(float)
    crit = criterion[known]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = cnt / n_item
        g_share = g_cnt / g_tot
        mean_c = np.bincount(cell, weights=crit, minlength=n_i * n_opt).reshape(n_i, n_opt) / cnt
    # option point-biserial: correlation of [chose option k] with the criterion, among the item's answers
    with np.errstate(invalid="ignore", divide="ignore"):
        m_c = np.bincount(item, weights=crit, minlength=n_i) / n_item[:, 0]
        v_c = np.bincount(item, weights=crit ** 2, minlength=n_i) / n_item[:, 0] - m_c ** 2
        cov = share * (mean_c - m_c[:, None])
        r = np.where((share > 0) & (share < 1) & (v_c[:, None] > 1e-12),
                     cov / np.sqrt(np.maximum(share * (1 - share) * v_c[:, None], 1e-300)), np.nan)
    # rows: the options the bank's content offers, else every option up to the highest chosen (and the key)
    highest = np.where(cnt.sum(axis=1) > 0, n_opt - 1 - np.argmax((cnt > 0)[:, ::-1], axis=1), -1)
    highest = np.maximum(np.maximum(highest, key_idx), offered - 1)
    ii, kk = np.nonzero(np.arange(n_opt)[None, :] <= highest[:, None])
    table = OptionAnalysis(item_id=tuple(item_ids[i] for i in ii), option=tuple(chr(ord("A") + int(k)) for k in kk),
                           is_key=kk == key_idx[ii], n=cnt[ii, kk].astype(int), share=share[ii, kk],
                           share_lower=g_share[ii, kk, 0], share_middle=g_share[ii, kk, 1],
                           share_upper=g_share[ii, kk, 2], mean_criterion=mean_c[ii, kk], r=r[ii, kk])
    return table, key_idx


_CRITERION_NAME = {"rest score": "rest score", "theta": "ability estimate θ̂ (WLE)"}
_CAT_NOTE = {"theta": " (in an adaptive test items meet candidates near their own level, which lowers it)"}


def write_html(res: ClassicalAnalysis, path, *, title: str = "Item analysis", plots: bool = True,
               max_traces: int = 24):
    """One self-contained page: summary, flagged items, every item, the option table and option trace plots
    of the flagged items (up to ``max_traces``; figures need matplotlib). Returns the path."""
    import html as _html
    from pathlib import Path

    from ..htmlpage import image, page, table

    path = Path(path)
    items = res.items
    flagged = [r for r in items.to_records() if r["flags"]]
    cols = ["item_id", "n", "key_option", "p_value", "r", "p_lower", "p_upper", "d", "flags"]
    labels = {"item_id": "item", "key_option": "key", "p_value": "p", "r": "r (rest score)" if
              res.criterion == "rest score" else "r (θ̂)",
              "p_lower": "p lower 27%", "p_upper": "p upper 27%"}
    rel = (f"coefficient alpha {res.alpha:.3f}, SEM {res.sem:.2f} score points" if np.isfinite(res.alpha)
           else "reliability: not defined for adaptive or incomplete data (use the IRT information instead)")
    parts = [f"<h1>{_html.escape(title)}</h1>",
             f"<p class='note'>{res.n_persons:,} candidates, {res.n_items} items; discrimination is the "
             f"correlation with the {_html.escape(_CRITERION_NAME[res.criterion])}{_CAT_NOTE.get(res.criterion, '')}"
             f"; {rel}.</p>",
             "<div class='cards'>" + "".join(f"<div class='card'><b>{v}</b>{_html.escape(k)}</div>" for k, v in (
                 ("items flagged", len(flagged)), ("items", res.n_items),
                 ("median p", f"{np.nanmedian(items.p_value):.2f}"),
                 ("median r", f"{np.nanmedian(items.r):.2f}"))) + "</div>",
             f"<h2>Flagged items ({len(flagged)})</h2>",
             table(flagged, cols, digits=3, text_cols=("item_id", "key_option", "flags"), labels=labels,
                   cell_class=lambda r, c: "flag" if c == "flags" else "") if flagged else "<p>No item is flagged.</p>"]
    if plots and res.traces is not None and flagged:
        parts += ["<h2>Option trace lines of the flagged items</h2>",
                  f"<p class='note'>Share of candidates choosing each option in {res.trace_groups} equal-size "
                  f"groups of the {_html.escape(_CRITERION_NAME[res.criterion])}, low to high; the key is the line "
                  "with the wide band.</p>",
                  image(_trace_figure(res, [r["item_id"] for r in flagged][:max_traces]), "option trace lines")]
    parts += ["<h2>All items</h2>", table(items.to_records(), cols, digits=3,
                                           text_cols=("item_id", "key_option", "flags"), labels=labels)]
    if res.options is not None:
        parts += ["<h2>Options</h2>", table(res.options.to_records(),
                                            ["item_id", "option", "is_key", "n", "share", "share_lower",
                                             "share_middle", "share_upper", "mean_criterion", "r"], digits=3,
                                            text_cols=("item_id", "option"))]
    path.write_text(page(title, parts), encoding="utf-8")
    return path


def _trace_figure(res: ClassicalAnalysis, ids) -> bytes:
    from ..htmlpage import figure_png
    from ..plotting import styled

    index = {iid: k for k, iid in enumerate(res.items.item_id)}
    label = _CRITERION_NAME[res.criterion]
    assert res.traces is not None
    n = len(ids)
    ncol = min(4, n)
    nrow = -(-n // ncol)
    x = np.arange(1, res.trace_groups + 1)
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
    with styled() as plt:
        fig, axes = plt.subplots(nrow, ncol, figsize=(3.0 * ncol, 2.5 * nrow + 0.6), squeeze=False, sharey=True,
                                 layout="constrained")
        shown: dict[str, object] = {}
        for ax, iid in zip(axes.ravel(), ids):
            k = index[iid]
            tr = res.traces[k]
            key = res.items.key_option[k]
            for o in range(tr.shape[0]):
                if np.all(np.nan_to_num(tr[o]) == 0):
                    continue
                letter = chr(ord("A") + o)
                (line,) = ax.plot(x, tr[o], marker="o", ms=3, lw=1.2, color=colors[o % len(colors)])
                shown.setdefault(letter, line)
                if letter == key:
                    ax.plot(x, tr[o], lw=4.0, color=colors[o % len(colors)], alpha=0.35)
            ax.set_title(f"{iid} (key {key})", fontsize=9)
            ax.set_xticks(x)
            ax.set_ylim(0, 1)
        for ax in axes.ravel()[n:]:
            ax.axis("off")
        fig.legend(list(shown.values()), [f"option {k}" for k in shown], loc="outside upper center",
                   ncol=len(shown), fontsize=8)
        fig.supxlabel(f"{label} group (low to high)", fontsize=9)
        fig.supylabel("share choosing", fontsize=9)
        png = figure_png(fig)
        plt.close(fig)
    return png
