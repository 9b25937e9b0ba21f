"""Study reports: tidy CSV/JSON of every metric, matplotlib figures and one self-contained HTML page.

``write_report(result, out_dir)`` writes

* ``metrics.csv`` / ``metrics.json`` -- one row per condition × replication (bias, RMSE, correlation,
  mean SE, empirical reliability, length, exposure, overlap, classification, blueprint conformance);
* ``conditional.csv`` -- one row per condition × replication × θ bin (bias, RMSE, mean SE, length, P(pass));
* ``exposure.csv`` -- one row per condition × item (exposure rate, pretest rate);
* ``lengths.csv`` -- the test-length distribution per condition;
* ``study.json`` -- the study's configuration and the conditions' settings;
* figures (PNG): conditional bias/RMSE/SE, exposure histogram, test information, OC curve,
  test-length histogram; and ``report.html`` with every table and figure embedded (base64), so the
  one file can be mailed or archived.

The figures need matplotlib (``pip install 'adaptive-cat[plots]'``).
"""

from __future__ import annotations

import csv
import html
import json
from pathlib import Path

import numpy as np

from ..htmlpage import figure_png, image, page, table
from ..plotting import STYLE, cut_line, pyplot
from .study import StudyResult

__all__ = ["write_report", "write_tables"]


def _write_csv(path: Path, rows: list[dict]) -> None:
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()})


def write_tables(result: StudyResult, out_dir: str | Path) -> list[Path]:
    """The tidy tables (CSV and JSON)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, rows in (("metrics", result.metrics), ("conditional", result.conditional),
                       ("exposure", result.exposure), ("lengths", result.lengths)):
        _write_csv(out / f"{name}.csv", rows)
        paths.append(out / f"{name}.csv")
    (out / "metrics.json").write_text(json.dumps(result.metrics, indent=1, allow_nan=True) + "\n")
    study = {"config": result.config.model_dump(mode="json"),
             "conditions": [{"condition": c.index, "settings": c.settings, "design": c.design.model_dump(mode="json")}
                            for c in result.conditions]}
    (out / "study.json").write_text(json.dumps(study, indent=1) + "\n")
    return paths + [out / "metrics.json", out / "study.json"]


def _figures(result: StudyResult):
    plt = pyplot()
    with plt.rc_context(STYLE):
        return _draw(result, plt), plt


def _draw(result: StudyResult, plt) -> dict:
    figs = {}
    conds = result.conditions
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    color = {c.index: colors[c.index % len(colors)] for c in conds}

    def cuts(ax):
        """The conditions' θ cuts as labelled lines (one legend entry per distinct cut)."""
        for cut in sorted({c.design.theta_cut for c in conds if c.design.theta_cut is not None}):
            cut_line(ax, cut)

    def finish(name, fig, ax, title, xlabel, ylabel):
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend()
        fig.tight_layout()
        figs[name] = fig

    def pooled_conditional(ci):
        rows = [r for r in result.conditional if r["condition"] == ci and np.isfinite(r["bin_low"])
                and np.isfinite(r["bin_high"])]
        mids = sorted({(r["bin_low"] + r["bin_high"]) / 2 for r in rows})
        out: dict[str, list] = {k: [] for k in ("bias", "rmse", "mean_se", "p_pass")}
        for m in mids:
            sel = [r for r in rows if (r["bin_low"] + r["bin_high"]) / 2 == m]
            w = np.array([r["n"] for r in sel], dtype=float)
            for k in out:
                if k in sel[0]:
                    v = np.array([r[k] for r in sel])
                    out[k].append(float(np.sum(w * (v**2 if k == "rmse" else v)) / w.sum()))
        out["rmse"] = list(np.sqrt(out["rmse"]))
        return np.array(mids), out

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.9))
    for c in conds:
        mids, v = pooled_conditional(c.index)
        for ax, k in zip(axes, ("bias", "rmse", "mean_se"), strict=True):
            ax.plot(mids, v[k], marker="o", ms=3, color=color[c.index], label=c.label)
    for ax, t, y in zip(axes, ("Conditional bias", "Conditional RMSE", "Conditional mean SE"),
                        ("bias of θ̂ (logits)", "RMSE of θ̂ (logits)", "mean SE of θ̂ (logits)"), strict=True):
        ax.set_title(t)
        ax.set_xlabel("true θ (logits)")
        ax.set_ylabel(y)
    axes[0].axhline(0, color="k", lw=0.8)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), title="condition")
    fig.tight_layout(rect=(0, 0.06 + 0.05 * ((len(labels) - 1) // 4 + 1), 1, 1))
    figs["conditional"] = fig

    if any(c.design.theta_cut is not None for c in conds):
        fig, ax = plt.subplots(figsize=(6.5, 4))
        for c in conds:
            mids, v = pooled_conditional(c.index)
            if v["p_pass"]:
                ax.plot(mids, v["p_pass"], marker="o", ms=3, color=color[c.index], label=c.label)
        cuts(ax)
        ax.set_ylim(-0.02, 1.02)
        finish("oc_curve", fig, ax, "Operating characteristic: P(pass | θ)", "true θ (logits)", "P(pass)")

    fig, ax = plt.subplots(figsize=(6.5, 4))
    bins = np.linspace(0, 1, 41)
    for c in conds:
        rates = np.array([r["rate"] for r in result.exposure if r["condition"] == c.index and
                          r["status"] == "operational"])
        ax.hist(rates, bins=bins, histtype="step", linewidth=1.6, color=color[c.index], label=c.label)
    for rate in sorted({c.design.exposure.max_rate for c in conds if c.design.exposure.max_rate}):
        ax.axvline(rate, color="k", linestyle=":", linewidth=1.0, label=f"target maximum rate {rate:g}")
    finish("exposure", fig, ax, "Item exposure rates (operational items)", "exposure rate (share of tests)",
           "number of items")

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for c in conds:
        rows = sorted((r for r in result.lengths if r["condition"] == c.index), key=lambda r: r["length"])
        ax.plot([r["length"] for r in rows], [r["count"] for r in rows], drawstyle="steps-mid", color=color[c.index],
                label=c.label)
    finish("test_length", fig, ax, "Test length (scored items)", "scored items", "number of simulees")

    fig, ax = plt.subplots(figsize=(6.5, 4))
    theta = np.linspace(-4, 4, 161)
    info = result.bank.compile().information(theta)
    operational = np.array([it.status == "operational" for it in result.bank.items])
    ax.plot(theta, info[:, operational].sum(axis=1), color="k", label="operational pool")
    for c in conds:
        rates = np.array([r["rate"] for r in result.exposure if r["condition"] == c.index])
        ax.plot(theta, info @ rates, color=color[c.index], ls="--", label=f"average test ({c.label})")
    cuts(ax)
    finish("test_information", fig, ax, "Test information", "θ (logits)", "information")
    return figs


def write_report(result: StudyResult, out_dir: str | Path, plots: bool = True) -> Path:
    """Tables, figures and ``report.html``; returns the HTML path."""
    out = Path(out_dir)
    write_tables(result, out)
    images = {}
    if plots and result.config.report.plots:
        try:
            figs, plt = _figures(result)
        except ImportError:
            raise ImportError("the study's figures need matplotlib: pip install 'adaptive-cat[plots]' "
                              "(or set report.plots = false)") from None
        for name, fig in figs.items():
            png = figure_png(fig)
            (out / f"{name}.png").write_bytes(png)
            images[name] = png
            plt.close(fig)
    cfg = result.config
    settings = list(cfg.sweep)
    main_cols = settings + ["replication", "n", "bias", "rmse", "corr", "mean_se", "rms_se", "empirical_reliability",
                            "mean_length", "max_exposure", "unused_items", "overlap", "blueprint_conformance"]
    cls_cols = settings + ["replication", "pass_rate", "true_pass_rate", "accuracy", "false_pass", "false_fail",
                           "no_decision", "rudner_accuracy", "rudner_consistency"]
    sim = cfg.simulees
    dist = sim.distribution + ("" if sim.distribution == "grid" else f" N({sim.mean}, {sim.sd}²)")
    parts = [f"<h1>{html.escape(cfg.name)}</h1>",
             f"<p>seed {cfg.seed}; {cfg.simulees.n} simulees per cell ({dist})"
             f", {cfg.simulees.replications} replication(s), {len(result.conditions)} condition(s); bank "
             f"{html.escape(result.bank.name)} v{html.escape(result.bank.version)} ({len(result.bank)} items)</p>",
             "<h2>Conditions</h2>",
             table([{"condition": c.index, "settings": c.label, "length": f"{c.design.min_length}-"
                           f"{c.design.max_length}", "selection": c.design.selection.rule,
                           "theta_cut": c.design.theta_cut} for c in result.conditions],
                         ["condition", "settings", "length", "selection", "theta_cut"]),
             "<h2>Precision, length, exposure</h2>", table(result.metrics, main_cols)]
    if any("accuracy" in m for m in result.metrics):
        parts += ["<h2>Classification</h2>", table(result.metrics, cls_cols)]
    titles = {"conditional": "Conditional bias, RMSE and SE", "oc_curve": "Operating characteristic curve",
              "exposure": "Exposure", "test_length": "Test length", "test_information": "Test information"}
    for name, data in images.items():
        parts.append(f"<h2>{titles[name]}</h2>" + image(data, name))
    parts.append("<h2>Conditional metrics</h2>" + table(
        result.conditional, settings + ["replication", "bin_low", "bin_high", "n", "bias", "rmse", "mean_se",
                                        "mean_length"] + (["p_pass"] if any("p_pass" in r for r in result.conditional)
                                                          else [])))
    page_text = page(cfg.name, parts)
    path = out / "report.html"
    path.write_text(page_text, encoding="utf-8")
    return path
