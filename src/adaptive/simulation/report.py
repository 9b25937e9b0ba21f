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

import base64
import csv
import html
import io
import json
from pathlib import Path

import numpy as np

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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs = {}
    conds = result.conditions
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]

    def finish(name, fig, ax, title, xlabel, ylabel, grid=True):
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if grid:
            ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
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

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), dpi=100)
    for c in conds:
        mids, v = pooled_conditional(c.index)
        col = colors[c.index % len(colors)]
        for ax, k in zip(axes, ("bias", "rmse", "mean_se")):
            ax.plot(mids, v[k], marker="o", ms=3, color=col, label=c.label)
    for ax, t in zip(axes, ("conditional bias", "conditional RMSE", "conditional mean SE")):
        ax.set_title(t)
        ax.set_xlabel("true θ")
        ax.grid(alpha=0.3)
    axes[0].axhline(0, color="k", lw=0.8)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    figs["conditional"] = fig

    if any(c.design.theta_cut is not None for c in conds):
        fig, ax = plt.subplots(figsize=(6, 3.8), dpi=100)
        for c in conds:
            mids, v = pooled_conditional(c.index)
            if v["p_pass"]:
                ax.plot(mids, v["p_pass"], marker="o", ms=3, color=colors[c.index % len(colors)], label=c.label)
            if c.design.theta_cut is not None:
                ax.axvline(c.design.theta_cut, color="tab:red", ls="--", lw=0.8)
        finish("oc_curve", fig, ax, "operating characteristic: P(pass | θ)", "true θ", "P(pass)")

    fig, ax = plt.subplots(figsize=(6, 3.8), dpi=100)
    for c in conds:
        rates = np.array([r["rate"] for r in result.exposure if r["condition"] == c.index and
                          r["status"] == "operational"])
        ax.hist(rates, bins=list(np.linspace(0, 1, 41)), alpha=0.5, color=colors[c.index % len(colors)], label=c.label)
    finish("exposure", fig, ax, "item exposure rates (operational items)", "exposure rate", "items", grid=False)

    fig, ax = plt.subplots(figsize=(6, 3.8), dpi=100)
    for c in conds:
        rows = [r for r in result.lengths if r["condition"] == c.index]
        ax.bar([r["length"] for r in rows], [r["count"] for r in rows], alpha=0.5,
               color=colors[c.index % len(colors)], label=c.label)
    finish("test_length", fig, ax, "test length (scored items)", "items", "simulees", grid=False)

    fig, ax = plt.subplots(figsize=(6, 3.8), dpi=100)
    theta = np.linspace(-4, 4, 161)
    info = result.bank.compile().information(theta)
    operational = np.array([it.status == "operational" for it in result.bank.items])
    ax.plot(theta, info[:, operational].sum(axis=1), label="operational pool")
    for c in conds:
        rates = np.array([r["rate"] for r in result.exposure if r["condition"] == c.index])
        ax.plot(theta, info @ rates, color=colors[c.index % len(colors)], ls="--",
                label=f"average test ({c.label})")
        if c.design.theta_cut is not None:
            ax.axvline(c.design.theta_cut, color="tab:red", ls=":", lw=0.8)
    finish("test_information", fig, ax, "test information", "θ", "information")
    return figs, plt


def _html_table(rows: list[dict], cols: list[str]) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4f}"
        return html.escape(str(v))

    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{fmt(r.get(c, ''))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


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
            buf = io.BytesIO()
            fig.savefig(buf, format="png")
            (out / f"{name}.png").write_bytes(buf.getvalue())
            images[name] = base64.b64encode(buf.getvalue()).decode("ascii")
            plt.close(fig)
    cfg = result.config
    settings = list(cfg.sweep)
    main_cols = settings + ["replication", "n", "bias", "rmse", "corr", "mean_se", "rms_se", "empirical_reliability",
                            "mean_length", "max_exposure", "unused_items", "overlap", "blueprint_conformance"]
    cls_cols = settings + ["replication", "pass_rate", "true_pass_rate", "accuracy", "false_pass", "false_fail",
                           "no_decision"]
    sim = cfg.simulees
    dist = sim.distribution + ("" if sim.distribution == "grid" else f" N({sim.mean}, {sim.sd}²)")
    parts = [f"<h1>{html.escape(cfg.name)}</h1>",
             f"<p>seed {cfg.seed}; {cfg.simulees.n} simulees per cell ({dist})"
             f", {cfg.simulees.replications} replication(s), {len(result.conditions)} condition(s); bank "
             f"{html.escape(result.bank.name)} v{html.escape(result.bank.version)} ({len(result.bank)} items)</p>",
             "<h2>Conditions</h2>",
             _html_table([{"condition": c.index, "settings": c.label, "length": f"{c.design.min_length}-"
                           f"{c.design.max_length}", "selection": c.design.selection.rule,
                           "theta_cut": c.design.theta_cut} for c in result.conditions],
                         ["condition", "settings", "length", "selection", "theta_cut"]),
             "<h2>Precision, length, exposure</h2>", _html_table(result.metrics, main_cols)]
    if any("accuracy" in m for m in result.metrics):
        parts += ["<h2>Classification</h2>", _html_table(result.metrics, cls_cols)]
    titles = {"conditional": "Conditional bias, RMSE and SE", "oc_curve": "Operating characteristic curve",
              "exposure": "Exposure", "test_length": "Test length", "test_information": "Test information"}
    for name, data in images.items():
        parts.append(f"<h2>{titles[name]}</h2><img alt='{name}' src='data:image/png;base64,{data}'>")
    parts.append("<h2>Conditional metrics</h2>" + _html_table(
        result.conditional, settings + ["replication", "bin_low", "bin_high", "n", "bias", "rmse", "mean_se",
                                        "mean_length"] + (["p_pass"] if any("p_pass" in r for r in result.conditional)
                                                          else [])))
    style = ("body{font-family:sans-serif;margin:2em;max-width:1300px} table{border-collapse:collapse;font-size:12px;"
             "margin-bottom:1em} td,th{border:1px solid #ccc;padding:2px 6px;text-align:right} img{max-width:100%}")
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(cfg.name)}</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>\n")
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
