"""A security report for one testing window: every statistic, the flags with their thresholds, figures.

:func:`analyse` runs what the records allow -- person fit (lz*) always; the lognormal time model, ``l_t`` and
rapid guessing when times are known; pre-knowledge when a suspected set is given (or found by the item scan
after a date); answer similarity when chosen options are known -- and returns a :class:`SecurityReport` of
typed results. :func:`write_html` writes it as one self-contained page.

Flags are per statistic at the stated ``alpha`` (one-sided p-values). With ``N`` honest candidates about
``alpha × N`` are flagged by chance by each candidate-level statistic; the report says so. Pairs are flagged
with multiplicity control over all pairs compared (Bonferroni by default). A flag is a reason to look at a
session's audit trail, never a finding by itself.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ..answers import Records
from ..exceptions import ResponseValidationError, ScoringError
from ..htmlpage import figure_png, image, page, table
from ..plotting import styled
from ..scoring.long_format import estimate_theta
from ..tables import Table
from ._stats import below
from .person_fit import PersonFitResult, adaptive_null, person_fit
from .preknowledge import ItemScan, PreknowledgeResult, item_mask, item_scan, preknowledge
from .rapid import RTE_ENGAGED, RapidGuessing, rapid_guessing
from .response_times import ResponseTimeFit, SpeedFit, ability_speed_correlation, fit_response_times, speed_fit
from .similarity import SimilarityResult, answer_similarity

__all__ = ["CandidateFlags", "SecurityReport", "analyse", "write_html"]


@dataclass(frozen=True)
class CandidateFlags(Table):
    """One row per candidate: the statistics that were computed and the flags raised.

    Attributes
    ----------
    person_id : the session (the export's ``person``); candidate : the candidate id ("" when unknown)
    site, window; n : answers
    theta : WLE θ̂; lz_star, p_lz_star : person fit
    lt_z, p_lt : response-time fit (Wilson-Hilferty z of ``l_t`` and its p-value)
    effort, n_rapid, theta_without_rapid : rapid guessing
    z_preknowledge, p_preknowledge : the combined signed LR statistic for the suspected set
    n_similar : flagged pairs the candidate is in
    flags : the reasons, ``"; "``-joined ("" when none)
    """

    key = "person_id"
    person_id: tuple
    candidate: tuple
    site: tuple
    window: tuple
    n: np.ndarray
    theta: np.ndarray
    lz_star: np.ndarray
    p_lz_star: np.ndarray
    lt_z: np.ndarray
    p_lt: np.ndarray
    effort: np.ndarray
    n_rapid: np.ndarray
    theta_without_rapid: np.ndarray
    z_preknowledge: np.ndarray
    p_preknowledge: np.ndarray
    n_similar: np.ndarray
    flags: tuple

    def flagged(self) -> np.ndarray:
        return np.array([bool(f) for f in self.flags])


@dataclass(frozen=True)
class SecurityReport:
    """Everything :func:`analyse` found (``None`` where the records did not allow a statistic)."""

    candidates: CandidateFlags
    person_fit: PersonFitResult
    response_times: ResponseTimeFit | None
    speed: SpeedFit | None
    rapid: RapidGuessing | None
    preknowledge: PreknowledgeResult | None
    item_scan: ItemScan | None
    similarity: SimilarityResult | None
    compromised: tuple
    alpha: float
    notes: tuple = field(default=())
    bank_name: str = ""
    lz_cut: float = float("nan")
    lz_null: np.ndarray | None = None
    ability_speed_correlation: float = float("nan")

    def summary(self) -> str:
        c = self.candidates
        n = len(c)
        lines = [f"{n} candidates, {int(c.n.sum())} answers; alpha {self.alpha:g} per statistic "
                 f"(about {self.alpha * n:.0f} chance flags each)"]
        for name, count in self.flag_counts().items():
            lines.append(f"  {name}: {count}")
        lines += [f"  note: {x}" for x in self.notes]
        return "\n".join(lines)

    def flag_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.candidates.flags:
            for reason in filter(None, f.split("; ")):
                key = reason.split(" (")[0]
                out[key] = out.get(key, 0) + 1
        return out


def analyse(bank, records: Records, *, compromised=None, after: float | None = None, alpha: float = 0.01,
            fdr: float = 0.05, rapid_method: str = "normative", correction: str = "bonferroni", design=None,
            null_simulees: int = 5000, rng=0) -> SecurityReport:
    """Run every statistic the records allow; see the module docstring.

    ``compromised``: suspected leaked items (ids, indices or mask); ``after``: POSIX time from which to scan
    items for a change (its flagged items become the suspected set when none is given). ``design``: the
    adaptive design the candidates took; lz* p-values then come from ``null_simulees`` honest candidates
    simulated through it at the window's own ability distribution (:func:`adaptive_null`), not from N(0, 1).
    """
    if not 0 < alpha < 0.5:
        raise ScoringError(f"alpha {alpha!r}: give the false-positive rate per statistic, e.g. 0.01")
    arrays = bank.compile() if hasattr(bank, "compile") else bank
    notes: list[str] = []
    wle = estimate_theta(arrays, records, "wle")
    theta = wle.theta
    null = None if design is None else adaptive_null(design, bank, null_simulees, theta=theta, rng=rng)
    pf = person_fit(arrays, records, theta=theta, statistic="lz_star", estimator="wle", null=null)
    rt = sp = rg = None
    rho = float("nan")
    if records.has_times:
        rt = fit_response_times(records)
        sp = speed_fit(rt, records)
        rg = rapid_guessing(arrays, records, method=rapid_method, theta=pf.theta)
        try:
            rho = ability_speed_correlation(wle.theta, wle.se, rt)
        except ResponseValidationError:
            rho = float("nan")
        if not rt.converged:
            notes.append(f"the response-time model did not converge in {rt.n_iter} cycles")
    else:
        notes.append("no response times in the records: time model, l_t and rapid guessing skipped")
    scan = None
    comp_mask = None
    if after is not None:
        if np.isfinite(records.answered_at).any():
            scan = item_scan(arrays, records, after, rt_fit=rt)
        else:
            notes.append("no answer times (answered_at): the item scan after the date was skipped")
    if compromised is not None:
        comp_mask = item_mask(bank, compromised, records.n_items)
    elif scan is not None:
        comp_mask = scan.flagged(fdr)
        notes.append(f"suspected set: the {int(comp_mask.sum())} item(s) the scan flags at FDR {fdr:g}")
    pk = None
    if comp_mask is not None:
        if comp_mask.any():
            pk = preknowledge(arrays, records, comp_mask, rt_fit=rt)
        else:
            notes.append("the suspected set is empty: pre-knowledge statistics skipped")
    sim = None
    if (records.option >= 0).any():
        sim = answer_similarity(arrays, records, alpha=alpha, correction=correction, theta=pf.theta)
    else:
        notes.append("no chosen options in the records: answer similarity skipped")
    n = records.n_persons
    nan = np.full(n, np.nan)
    n_similar = np.zeros(n, dtype=int)
    partners: dict[int, list[str]] = {}
    if sim is not None:
        index = {p: k for k, p in enumerate(records.person_ids)}
        for a, b, f in zip(sim.person_a, sim.person_b, sim.flagged, strict=True):
            if f:
                for x, y in ((a, b), (b, a)):
                    n_similar[index[x]] += 1
                    partners.setdefault(index[x], []).append(y)
    cols = {"lz": pf.values, "p_lz": pf.p_values,
            "lt_z": sp.z if sp else nan, "p_lt": sp.p_values if sp else nan,
            "effort": rg.effort if rg else nan, "n_rapid": rg.n_rapid if rg else np.zeros(n, int),
            "theta_wo": rg.theta_without_rapid if rg else nan,
            "z_pk": pk.z_combined if pk else nan, "p_pk": pk.p_combined if pk else nan}
    flags = _flag_reasons(cols, partners, alpha, n)
    cand = CandidateFlags(person_id=records.person_ids, candidate=records.candidate, site=records.site,
                          window=records.window,
                          n=records.answered(), theta=pf.theta, lz_star=cols["lz"], p_lz_star=cols["p_lz"],
                          lt_z=cols["lt_z"], p_lt=cols["p_lt"], effort=cols["effort"],
                          n_rapid=np.asarray(cols["n_rapid"], dtype=int), theta_without_rapid=cols["theta_wo"],
                          z_preknowledge=cols["z_pk"], p_preknowledge=cols["p_pk"], n_similar=n_similar, flags=flags)
    ids = getattr(arrays, "ids", ())
    comp_ids = tuple(ids[i] for i in np.flatnonzero(comp_mask)) if comp_mask is not None and ids else ()
    return SecurityReport(candidates=cand, person_fit=pf, response_times=rt, speed=sp, rapid=rg, preknowledge=pk,
                          item_scan=scan, similarity=sim, compromised=comp_ids, alpha=alpha, notes=tuple(notes),
                          bank_name=getattr(bank, "name", ""), lz_cut=_lz_cut(null, alpha),
                          lz_null=None if null is None else null.values, ability_speed_correlation=rho)


def _lz_cut(null, alpha: float) -> float:
    """The lz* value below which a candidate is flagged."""
    if null is None:
        return _z_low(alpha)
    k = int(np.floor(alpha * (null.values.size + 1))) - 1  # p = (1 + rank)/(n + 1) < alpha
    return float(null.values[k]) if k >= 0 else float("-inf")


def _flag_reasons(cols, partners, alpha, n) -> tuple:
    checks = [(below(cols["p_lz"], alpha), "response misfit (lz*)"),
              (below(cols["p_lt"], alpha), "timing misfit (l_t)"),
              (below(cols["p_pk"], alpha), "pre-knowledge"),
              (np.nan_to_num(cols["effort"], nan=1.0) < RTE_ENGAGED, "rapid guessing (effort below 0.90)")]
    out = []
    for j in range(n):  # one string per candidate, for the report's table
        reasons = [label for mask, label in checks if mask[j]]
        if j in partners:
            reasons.append(f"answer similarity (with {', '.join(partners[j][:3])})")
        out.append("; ".join(reasons))
    return tuple(out)


# ---------------------------------------------------------------------- HTML
_LABELS = {"person_id": "session", "candidate": "candidate", "n": "answers", "theta": "θ̂", "lz_star": "lz*",
           "p_lz_star": "p(lz*)",
           "lt_z": "l_t (z)", "p_lt": "p(l_t)", "n_rapid": "rapid", "theta_without_rapid": "θ̂ w/o rapid",
           "z_preknowledge": "z pre-knowledge", "p_preknowledge": "p pre-knowledge", "p_values": "p",
           "p_adjusted": "p adjusted", "identical_wrong": "identical wrong", "common_items": "common items",
           "person_a": "session", "person_b": "session", "group": "site / window", "candidate_a": "candidate",
           "candidate_b": "candidate"}
def _figures(rep: SecurityReport) -> dict[str, bytes]:
    figs: dict[str, bytes] = {}
    with styled() as plt:
        c = rep.candidates
        fig, ax = plt.subplots(figsize=(6.4, 3.4))
        v = c.lz_star[np.isfinite(c.lz_star)]
        ax.hist(v, bins=60, density=True, color="#8fa7c4", label="candidates")
        if rep.lz_null is None:
            x = np.linspace(-5, 4, 200)
            ax.plot(x, np.exp(-x * x / 2) / math.sqrt(2 * math.pi), color="k", lw=1.2, label="N(0, 1)")
        else:
            ax.hist(rep.lz_null, bins=60, density=True, histtype="step", color="k", lw=1.2,
                    label="honest candidates (simulated)")
        ax.axvline(rep.lz_cut, color="tab:red", ls="--", lw=1.0, label=f"flag below (α = {rep.alpha:g})")
        ax.set(title="Person fit lz*", xlabel="lz*  (low: responses unlike the model)", ylabel="density")
        ax.legend()
        figs["lz_star"] = figure_png(fig)
        plt.close(fig)
        if rep.speed is not None:
            fig, ax = plt.subplots(figsize=(6.4, 4.0))
            flagged = c.flagged()
            ax.scatter(c.lz_star[~flagged], c.lt_z[~flagged], s=6, color="#8fa7c4", label="not flagged")
            ax.scatter(c.lz_star[flagged], c.lt_z[flagged], s=14, color="tab:red", label="flagged")
            ax.axvline(rep.lz_cut, color="tab:red", ls="--", lw=0.8)
            ax.set(title="Responses against times", xlabel="lz*  (low: response misfit)",
                   ylabel="l_t as z  (high: timing misfit)")
            ax.legend()
            figs["lz_lt"] = figure_png(fig)
            plt.close(fig)
            fig, ax = plt.subplots(figsize=(6.4, 3.2))
            ax.hist(c.effort[np.isfinite(c.effort)], bins=np.linspace(0, 1, 41), color="#8fa7c4")
            ax.axvline(RTE_ENGAGED, color="tab:red", ls="--", lw=1.0, label="0.90: not engaged below")
            ax.set(title="Response-time effort", xlabel="share of answers slower than the item's threshold",
                   ylabel="candidates")
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))  # no mathtext fonts needed
            ax.legend()
            figs["effort"] = figure_png(fig)
            plt.close(fig)
        if rep.item_scan is not None:
            scan = rep.item_scan
            fig, ax = plt.subplots(figsize=(6.4, 4.0))
            fl = scan.flagged()
            ax.scatter(scan.z_residual[~fl], scan.z_time[~fl], s=8, color="#8fa7c4", label="items")
            ax.scatter(scan.z_residual[fl], scan.z_time[fl], s=16, color="tab:red", label="flagged (BH)")
            ax.set(title="Items after the date", xlabel="z: easier after (residual shift)",
                   ylabel="z: faster after (time shift)")
            ax.legend()
            figs["item_scan"] = figure_png(fig)
            plt.close(fig)
        if rep.similarity is not None and len(rep.similarity):
            s = rep.similarity
            fig, ax = plt.subplots(figsize=(6.4, 4.0))
            ax.scatter(s.expected[~s.flagged], s.identical_wrong[~s.flagged], s=8, color="#8fa7c4",
                       label="screened pairs")
            ax.scatter(s.expected[s.flagged], s.identical_wrong[s.flagged], s=18, color="tab:red", label="flagged")
            top = max(float(s.expected.max(initial=1.0)), 1.0)
            ax.plot([0, top], [0, top], color="k", lw=0.8, label="observed = expected")
            ax.set(title="Identical wrong answers", xlabel="expected (model)", ylabel="observed")
            ax.legend()
            figs["similarity"] = figure_png(fig)
            plt.close(fig)
    return figs


def _z_low(alpha: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(alpha))


def write_html(rep: SecurityReport, path: str | Path, *, title: str = "Security report", plots: bool = True) -> Path:
    """Write the report as one self-contained HTML page (figures need matplotlib); returns the path."""
    path = Path(path)
    c = rep.candidates
    counts = rep.flag_counts()
    n = len(c)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    windows = sorted(set(c.window) - {""})
    parts = [f"<h1>{html.escape(title)}</h1>",
             f"<p class='note'>Bank {html.escape(rep.bank_name)}; {n:,} candidates, {int(c.n.sum()):,} scored answers"
             f"{'; window ' + html.escape(', '.join(windows)) if windows else ''}; written {stamp}. Each candidate-"
             f"level statistic flags at α = {rep.alpha:g} (one-sided), so about {rep.alpha * n:.0f} honest candidates "
             "per statistic are flagged by chance. A flag is a reason to review the session's audit trail, not a "
             "finding.</p>",
             "<div class='cards'>" + "".join(f"<div class='card'><b>{v}</b>{html.escape(k)}</div>"
                                             for k, v in [("candidates flagged", int(c.flagged().sum()))] +
                                             list(counts.items())) + "</div>"]
    if rep.notes:
        parts.append("<ul class='note'>" + "".join(f"<li>{html.escape(x)}</li>" for x in rep.notes) + "</ul>")
    if rep.person_fit.reference == "N(0, 1)":
        ref = f"p-values from N(0, 1); flag if p < α (lz* < {_z_low(rep.alpha):.2f})"
    else:
        ref = f"p-values from honest candidates by {rep.person_fit.reference}; flag if p < α (lz* < {rep.lz_cut:.2f})"
    method = [("lz*", "Snijders (2001) corrected standardized log-likelihood at the WLE θ̂; " + ref)]
    if rep.response_times is not None and rep.rapid is not None:
        rt = rep.response_times
        rho = rep.ability_speed_correlation
        method.append(("l_t", f"van der Linden's lognormal model (σ_τ = {rt.speed_sd:.3f}, {rt.n_iter} EM cycles; "
                       f"correlation of ability and speed {rho:+.2f}); Σ z² of standardized log-time residuals, χ² "
                       "with n−1 df; flag if p < α"))
        method.append(("rapid guessing", f"{rep.rapid.method} thresholds; flag if response-time effort < "
                       f"{RTE_ENGAGED:.2f}; rapid answers right {rep.rapid.rapid_correct_rate:.1%} of the time"))
    if rep.preknowledge is not None:
        method.append(("pre-knowledge", f"signed LR (responses) and speed contrast (times) on {len(rep.compromised)} "
                       "suspected item(s) against the rest, Stouffer-combined; flag if p < α"))
    if rep.similarity is not None:
        s = rep.similarity
        method.append(("answer similarity", f"identical wrong options, exact Poisson-binomial p-values, "
                       f"{s.correction} over {s.n_pairs:,} pairs at the same site and window; flag if adjusted "
                       f"p < {s.alpha:g}"))
    parts += ["<h2>Methods and thresholds</h2>",
              table([{"statistic": a, "how": b} for a, b in method], ["statistic", "how"],
                    text_cols=("statistic", "how"))]
    rows = [r for r in c.to_records() if r["flags"]]
    rows.sort(key=lambda r: (-(r["flags"].count(";") + 1), r["p_lz_star"] if r["p_lz_star"] is not None else 1.0))
    cols = ["person_id", "candidate", "site", "flags", "n", "theta", "lz_star", "p_lz_star", "lt_z", "p_lt", "effort",
            "n_rapid", "theta_without_rapid", "z_preknowledge", "p_preknowledge"]
    parts += [f"<h2>Flagged candidates ({len(rows)})</h2>",
              table(rows, cols, digits=3, text_cols=("person_id", "candidate", "site", "flags"), labels=_LABELS,
                    cell_class=lambda r, col: "flag" if col == "flags" else "")
              if rows else "<p>No candidate is flagged.</p>"]
    if rep.similarity is not None:
        s = rep.similarity
        who = dict(zip(c.person_id, c.candidate, strict=True))
        pairs = [{**r, "candidate_a": who.get(r["person_a"], ""), "candidate_b": who.get(r["person_b"], "")}
                 for r in s.to_records() if r["flagged"]]
        named = any(r["candidate_a"] or r["candidate_b"] for r in pairs)
        pair_cols = (["candidate_a", "candidate_b"] if named else []) + [
            "person_a", "person_b", "group", "common_items", "identical_wrong", "expected", "p_values", "p_adjusted"]
        parts += [f"<h2>Flagged pairs ({len(pairs)} of {s.n_pairs:,} compared)</h2>",
                  table(pairs, pair_cols, digits=3, labels=_LABELS,
                        text_cols=("candidate_a", "candidate_b", "person_a", "person_b", "group"))
                  if pairs else "<p>No pair is flagged.</p>"]
    if rep.item_scan is not None:
        scan = rep.item_scan
        items = [r for r, f in zip(scan.to_records(), scan.flagged(), strict=True) if f]
        parts += [f"<h2>Items that changed after the date ({len(items)})</h2>",
                  table(items, ["item_id", "n_before", "n_after", "residual_shift", "z_residual", "time_shift",
                                "z_time", "p_values", "q_values"], digits=4, text_cols=("item_id",))
                  if items else "<p>No item changed beyond chance.</p>"]
    if plots:
        titles = {"lz_star": "Person fit", "lz_lt": "Responses and times", "effort": "Rapid guessing",
                  "item_scan": "Item scan", "similarity": "Answer similarity"}
        for name, png in _figures(rep).items():
            parts.append(f"<h2>{titles[name]}</h2>" + image(png, titles[name]))
    path.write_text(page(title, parts), encoding="utf-8")
    return path
