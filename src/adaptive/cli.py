"""The ``adaptive`` command.

Subcommands
-----------
``adaptive demo``            a simulated candidate takes the CMCS adaptive exam (transcript and score report)
``adaptive take``            take the adaptive exam yourself in the terminal
``adaptive score FILE``      estimate ability for every row of a response file
``adaptive bank check PATH`` validate a bank (JSON, CSV or a pool directory) and report every problem
``adaptive bank info PATH``  counts by domain and status, parameter summary; ``--plot F.png`` the information curve
``adaptive bank schema``     print the JSON Schema of the bank format
``adaptive simulate STUDY``  run a simulation study (TOML) and write its tables, figures and HTML report
``adaptive serve``           run the exam delivery service (see :mod:`adaptive.cli_service`)
``adaptive candidates ...``  register eligibilities, issue launch codes, list candidates' attempts
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

from .bank import ItemBank
from .cat import CatEngine, ExamDesign, Session
from .cat.posthoc import draw_responses
from .cli_analyze import add_analyze_command
from .cli_bank import add_lifecycle_commands
from .cli_multidim import factors_arg
from .cli_score import add_score_command
from .cli_security import add_security_command
from .cli_service import add_service_commands
from .cli_support import (
    EXIT_INTERRUPTED,
    _table,
    bounded_int,
    finite_float,
    model_name_arg,
    nonnegative_int,
    parse_prior_args,
    positive_float,
    run_command,
)
from .data_io import read_responses
from .exceptions import AdaptiveError
from .irt.registry import MODEL_NAMES, model_spec
from .resources import BUNDLED_POOLS, demo_bank_path, demo_design_path, demo_responses_path, package_version, pool_path

__all__ = ["demo_bank_path", "demo_design_path", "demo_responses_path", "load_bank", "main", "pool_path"]

def load_bank(path: str | Path) -> ItemBank:
    """Load a bank from ``.json`` or ``.csv`` (a directory: its ``bank.json``); see :meth:`ItemBank.load`."""
    return ItemBank.load(path)


def _exam_inputs(args):
    pool = pool_path(args.pool)
    bank = load_bank(args.bank if args.bank else pool)
    if args.design:
        design = ExamDesign.load(args.design)
    elif args.bank and Path(args.bank).is_dir() and (Path(args.bank) / "design.json").exists():
        design = ExamDesign.load(Path(args.bank) / "design.json")
    else:
        design = ExamDesign.load(pool / "design.json")
    return bank, design


def _report(session, design) -> str:
    res = session.result()
    lines = ["", "score report", "------------"]
    lines.append(f"decision:       {res.decision.upper()}  (rule: {res.stopped_by})")
    if res.scaled_score is not None:
        lines.append(f"scaled score:   {res.scaled_score:.0f}  (scale {design.scale.minimum:.0f}-"
                     f"{design.scale.maximum:.0f}, {design.scale.scaled_cut:.0f} to pass)")
    lines.append(f"theta:          {res.theta:.3f}  (SE {res.se:.3f}; cut {design.theta_cut:.3f})")
    if res.p_pass is not None:
        lines.append(f"P(pass):        {res.p_pass:.3f}")
    lines.append(f"scored items:   {res.n_scored}")
    report = session.domain_report()
    if report:
        levels = {"above": "above the standard", "near": "near the standard", "below": "below the standard"}
        alone = ["-" if d.theta is None else f"{d.theta:.2f} ({d.se:.2f})" for d in report]
        if report[0].subscore is None:
            lines += ["", "performance by content area (each from the candidate's own answers in it; a guide for "
                      "study, not a second decision)"]
            rows = [[d.domain, str(d.n_items), levels.get(d.level or "", d.level or "-"), a]
                    for d, a in zip(report, alone)]
            lines.append(_table(["content area", "items", "level", "theta (SE)"], rows))
        else:
            lines += ["", "performance by content area: domain subscores, each estimated from all scored answers "
                      "through the correlations between domains (a guide for study, not a second decision)"]
            rows = [[d.domain, str(d.n_items), levels.get(d.level or "", d.level or "-"),
                     "-" if d.scaled_subscore is None else f"{d.scaled_subscore:.0f} ({d.scaled_subscore_se:.0f})",
                     f"{d.subscore:.2f} ({d.subscore_se:.2f})", f"{d.reliability:.2f}", a]
                    for d, a in zip(report, alone)]
            lines.append(_table(["content area", "items", "level", "subscore (SE)", "theta (SE)", "reliability",
                                 "domain alone"], rows))
    return "\n".join(lines)


def cmd_demo(args) -> int:
    bank, design = _exam_inputs(args)
    engine = CatEngine(design, bank)
    rng = np.random.default_rng(args.seed)
    true_theta = float(args.theta) if args.theta is not None else float(rng.normal(0.3, 0.9))
    print(f"adaptive {package_version()} -- {design.name}: one simulated candidate (true theta {true_theta:.2f}, "
          f"seed {args.seed})")
    print(f"bank: {bank.name} v{bank.version}, {len(bank)} items; {design.min_length}-{design.max_length} items, "
          f"{design.selection.rule.upper()} selection, blueprint by {design.content.method}, "
          f"stop when the 95% interval excludes the cut\n")
    session = Session.start(design, bank, seed=args.seed, engine=engine)
    rows = []
    while (item_id := session.next_item()) is not None:
        idx = bank.index[item_id]
        ans = draw_responses(engine, np.array([session._key]), session._state.n_given, np.array([idx]),
                             np.array([true_theta]))[0]
        e = session.answer(item_id, int(ans), seconds=60.0)
        rows.append([str(e.step), item_id + (" *" if e.pretest else ""), e.domain or "-",
                     "right" if e.response else "wrong", f"{e.theta_after:.3f}", f"{e.se_after:.3f}",
                     f"{e.p_pass:.3f}" if e.p_pass is not None else "-"])
    print(_table(["#", "item", "domain", "answer", "theta", "SE", "P(pass)"], rows))
    n_pre = sum(e.pretest for e in session.audit)
    if n_pre:
        print(f"* pretest item: tried out, not scored ({n_pre} of the {len(rows)} answers; theta does not move)")
    print(_report(session, design))
    return 0


def cmd_take(args) -> int:
    import shutil
    import textwrap
    import time

    bank, design = _exam_inputs(args)
    session = Session.start(design, bank, seed=args.seed)
    out = sys.stdout
    width = max(40, min(100, shutil.get_terminal_size((80, 24)).columns) - 2)
    limit = design.stopping.time_limit
    started = time.monotonic()
    wrap = textwrap.TextWrapper(width=width, break_long_words=False, break_on_hyphens=False)
    facts = f"{design.min_length + design.pretest_items} to {design.max_length + design.pretest_items} questions"
    if limit:
        facts += f", {limit / 60:.0f} minutes"
    print(wrap.fill(f"{design.name} ({facts}) -- answer each question with its letter; 'q' quits.") + "\n", file=out)
    while (item_id := session.next_item()) is not None:
        item = bank.item(item_id)
        n = session.n_answered + 1
        content = item.content
        while True:
            head = f"Question {n}"
            if limit:
                left = max(0.0, limit - (time.monotonic() - started))
                head += f"  ({int(left // 60)}:{int(left % 60):02d} left)"
            print(head, file=out)
            if content is not None and content.options:
                print(wrap.fill(content.stem), file=out)
                for k, opt in enumerate(content.options):
                    print(textwrap.fill(opt, width=width, initial_indent=f"  {chr(65 + k)}. ",
                                        subsequent_indent="     ", break_long_words=False), file=out)
                prompt = f"your answer (A-{chr(64 + len(content.options))}): "
            else:
                print(f"item {item_id} ({item.domain}) has no text in this bank", file=out)
                prompt = "score it yourself: 1 = right, 0 = wrong: "
            print(prompt, end="", file=out, flush=True)
            line = sys.stdin.readline()
            if not line or line.strip().lower() == "q":
                print("\nstopped; the session is not finished", file=out)
                return 1
            text = line.strip().upper()
            if content is not None and content.options:
                if len(text) == 1 and 0 <= ord(text) - 65 < len(content.options):
                    score = int(text == content.key)
                    break
            elif text in ("0", "1"):
                score = int(text)
                break
            print("  not an answer; try again", file=out)
        print(file=out)
        session.answer(item_id, score)
    print(_report(session, design), file=out)
    return 0


def cmd_bank_check(args) -> int:
    from .pools import check_pool, content_warnings

    bank, problems = check_pool(args.path)
    if problems:
        print(f"{args.path}: {len(problems)} problem{'s' if len(problems) != 1 else ''}")
        for line in problems:
            print(f"  - {line}")
        return 1
    assert bank is not None  # check_pool gives a bank whenever it reports no problem
    arrays = bank.compile()
    counts = {d: int(np.sum(arrays.domain == k)) for k, d in enumerate(arrays.domains)}
    warnings = content_warnings(bank)
    print(f"{args.path}: OK -- {len(bank)} items, {arrays.enemy_pairs.shape[0]} enemy pairs")
    for d, n in counts.items():
        print(f"  {d}: {n}")
    keyed = [it.content.key for it in bank.items if it.content is not None and it.content.key]
    if keyed:
        shares = ", ".join(f"{k} {keyed.count(k) / len(keyed):.0%}" for k in sorted(set(keyed)))
        print(f"  keys: {shares}")
    if bank.subscores is not None:
        sub = bank.subscores.bank
        print(f"  subscore model: {len(sub)} items on {sub.n_dims} domain factors ({', '.join(sub.factor_names)}), "
              f"{bank.subscores.method.upper()} subscores")
    if warnings:
        print(f"{len(warnings)} content warning{'s' if len(warnings) != 1 else ''}:")
        for line in warnings:
            print(f"  - {line}")
        return 1 if args.strict else 0
    return 0


def cmd_bank_info(args) -> int:
    from .pools import pool_info

    info = pool_info(args.path)
    bank = info.bank
    print(f"{bank.name} v{bank.version}: {len(bank)} items, models {sorted({it.model for it in bank.items})}")
    print(info.table())
    print(info.parameter_summary())
    if args.plot:
        out = Path(args.plot)
        info.plot(out)
        print(f"wrote the test information curve to {out}")
    return 0


def cmd_bank_schema(args) -> int:
    text = json.dumps(ItemBank.json_schema(), indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    else:
        print(text)
    return 0


def _write_parameter_csv(result, path):
    k_max = max(int(result.n_cat.max()) - 1, 1)
    poly = any(not model_spec(m).dichotomous for m in result.models)
    head = ["id", "a", "b", "c", "d"] + ([f"b{k + 1}" for k in range(k_max)] if poly else []) + ["model"]
    ses = {}
    try:
        ses = result.standard_errors.items
    except AdaptiveError:
        pass
    head += ["se_a", "se_b", "se_c"]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(head)
        for iid, m in zip(result.item_ids, result.models):
            par = result.item_parameters(iid)
            e = ses.get(iid, {})
            dich = "b" in par
            row = [iid, repr(par["a"]), repr(par["b"]) if dich else "", repr(par["c"]) if dich else "",
                   repr(par["d"]) if dich else ""]
            if poly:
                row += [repr(par[f"b{k + 1}"]) if f"b{k + 1}" in par else "" for k in range(k_max)]
            row += [m] + [repr(e[key]) if key in e else "" for key in ("a", "b", "c")]
            w.writerow(row)


def _calibrate_cml(args, table) -> int:
    from .calibration import calibrate

    result = calibrate(table, model=args.model, method="cml")
    print(result.summary())
    test = result.andersen_test()
    print(f"Andersen's LR test (median raw-score split): LR {test.statistic:.3f}, df {test.df}, p {test.p_value:.4g}")
    if args.out:
        out = Path(args.out)
        if out.suffix.lower() == ".json":
            result.bank(name=out.stem).to_json(out)
        elif out.suffix.lower() == ".csv":
            result.to_csv(out)
        else:
            raise AdaptiveError(f"--out {args.out!r}: end the name in .json (a bank) or .csv (a parameter table)")
        print(f"wrote {out}")
    return 0 if result.converged else 1


def _calibrate_online(args) -> int:
    from .answers import read_answers
    from .calibration.online import online_calibrate

    if not args.fixed:
        raise AdaptiveError("--online needs --fixed BANK: the bank whose operational items stay fixed and whose "
                            "pretest items (status pretest) are calibrated")
    bank = load_bank(args.fixed)
    rec = read_answers(args.data, bank, include_pretest=True)
    res = online_calibrate(bank, rec, model=args.model, method=args.online, prior_update=args.prior_update,
                           priors=parse_prior_args(args.prior), quadrature=args.quadrature, tol=args.tol,
                           max_iter=args.max_iter)
    print(repr(res))
    print(_table(["item", "model", "n", "a", "se(a)", "b", "se(b)"],
                 [[r["item_id"], r["model"], str(r["n"]), f"{r['a']:.3f}", f"{r['se_a']:.3f}", f"{r['b']:.3f}",
                   f"{r['se_b']:.3f}"] for r in res.to_records()]))
    if args.out:
        out = Path(args.out)
        if out.suffix.lower() == ".csv":
            res.to_csv(out)
        else:
            res.bank(bank).to_json(out)
        print(f"wrote {out}")
    return 0 if res.converged else 1


def cmd_calibrate(args) -> int:
    from .calibration import calibrate

    if args.online:
        return _calibrate_online(args)
    table = read_responses(args.data, layout=args.layout)
    quiet = args.quiet

    def progress(cycle, loglik, change):
        if not quiet:
            print(f"  EM cycle {cycle:4d}   log-likelihood {loglik:16.4f}   largest change {change:9.2e}",
                  file=sys.stderr, flush=True)

    if args.method == "cml":
        return _calibrate_cml(args, table)
    if args.factors is not None or args.bifactor or args.model == "nominal":
        from .cli_multidim import calibrate_multidim

        return calibrate_multidim(args, table, progress)
    fixed = load_bank(args.fixed) if args.fixed else None
    if not quiet:
        n_miss = float(np.isnan(table.values).mean())
        print(f"calibrating {len(table.item_ids)} items x {len(table.person_ids)} persons ({n_miss:.0%} missing), "
              f"model {args.model}, {args.quadrature} quadrature points", file=sys.stderr, flush=True)
    result = calibrate(table, model=args.model, quadrature=args.quadrature, priors=parse_prior_args(args.prior),
                       fixed=fixed, tol=args.tol, max_iter=args.max_iter, progress=progress,
                       name=Path(args.out).stem if args.out else "calibrated")
    print(result.summary(se=not args.no_se, fit=not args.no_fit))
    if args.out:
        out = Path(args.out)
        if out.suffix.lower() == ".json":
            result.bank.to_json(out)
        elif out.suffix.lower() == ".csv":
            _write_parameter_csv(result, out)
        else:
            raise AdaptiveError(f"--out {args.out!r}: end the name in .json (a bank with provenance) or .csv (a "
                                "parameter table)")
        print(f"wrote {out}")
    return 0 if result.converged else 1


def cmd_simulate(args) -> int:
    from .simulation.report import write_report
    from .simulation.study import load_study, run_study

    cfg = load_study(args.study)
    bar = None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is in the simulation extra
        tqdm = None

    def progress(done, total):
        nonlocal bar
        if args.quiet:
            return
        if tqdm is not None:
            if bar is None:
                bar = tqdm(total=total, desc=cfg.name, unit="simulee", unit_scale=True, file=sys.stderr)
            bar.update(done - bar.n)
        else:
            print(f"  {done}/{total} simulees", file=sys.stderr, flush=True)

    client = cluster = None
    if args.scheduler or args.workers:
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise AdaptiveError("--scheduler/--workers need Dask: pip install 'adaptive-cat[simulation]'") from None
        if args.scheduler:
            try:
                client = Client(args.scheduler, timeout="10s")
            except (OSError, TimeoutError) as err:
                raise AdaptiveError(f"--scheduler {args.scheduler!r}: no Dask scheduler answered within 10 s ({err}); "
                                    "start one (dask scheduler) or check the address") from None
        else:
            cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            client = Client(cluster)
    try:
        result = run_study(cfg, client=client, progress=progress)
    finally:
        if bar is not None:
            bar.close()
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    report = write_report(result, args.out, plots=not args.no_plots)
    cols = list(cfg.sweep) + ["replication", "rmse", "bias", "mean_se", "mean_length", "max_exposure"]
    if any("accuracy" in m for m in result.metrics):
        cols += ["pass_rate", "accuracy"]
    rows = [[f"{m[c]:.4f}" if isinstance(m[c], float) else str(m[c]) for c in cols] for m in result.metrics]
    print(_table(cols, rows))
    print(f"wrote {report} and the tables beside it")
    return 0


_LAYOUT_HELP = ("file layout: wide (one row per person, one column per item id), long (person,item,response "
                "rows) or auto (long when the header is person,item,response) (default: auto)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="adaptive", description="Adaptive testing and IRT scoring for certification exams")
    p.add_argument("--version", action="version", version=f"adaptive {package_version()}")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="a simulated candidate takes the CMCS adaptive exam, with a transcript")
    d.add_argument("--theta", type=finite_float, help="the candidate's true ability (default: drawn from the seed)")
    d.add_argument("--seed", type=nonnegative_int, default=2026, help="random seed of the simulated candidate "
                   "(default 2026)")
    d.add_argument("--pool", default="cmcs", choices=BUNDLED_POOLS, help="bundled pool (default: cmcs)")
    d.add_argument("--bank", help="another bank file or pool directory (default: the bundled pool's bank)")
    d.add_argument("--design", help="another exam design, JSON or TOML (default: the pool's design)")
    d.set_defaults(func=cmd_demo)

    t = sub.add_parser("take", help="take the adaptive exam yourself in the terminal")
    t.add_argument("--seed", type=nonnegative_int, default=None,
                   help="random seed of the session (default: fresh entropy, stored with the session)")
    t.add_argument("--pool", default="cmcs", choices=BUNDLED_POOLS, help="bundled pool (default: cmcs)")
    t.add_argument("--bank", help="another bank file or pool directory")
    t.add_argument("--design", help="another exam design, JSON or TOML")
    t.set_defaults(func=cmd_take)

    add_score_command(sub, _LAYOUT_HELP)

    c = sub.add_parser("calibrate", help="fit item parameters (MML-EM) to a response file")
    c.add_argument("data", help="CSV: wide (one column per item, empty = missing) or long (person,item,response)")
    c.add_argument("--model", default="2pl", type=model_name_arg, metavar="MODEL",
                   help=f"item model, any case or alias (grm, GPCM, 2PL): {', '.join(MODEL_NAMES)} (default: 2pl)")
    c.add_argument("--out", help="OUT.json: a bank with provenance; OUT.csv: a parameter table (id,a,b,c,d,...)")
    c.add_argument("--quadrature", type=bounded_int(5, 1001), default=61,
                   help="quadrature points on [-6, 6], 5..1001 (default 61)")
    c.add_argument("--prior", action="append", help="a prior set (3pl, bilog) or NAME=DIST, e.g. c='beta(5, 17)'; "
                   "repeat for several")
    c.add_argument("--fixed", help="a bank whose items keep their parameters (fixed-parameter calibration); with "
                   "--factors, a multidimensional bank (.json or .csv in mirt's columns) (default: none)")
    c.add_argument("--layout", default="auto", choices=["auto", "wide", "long"], help=_LAYOUT_HELP)
    c.add_argument("--tol", type=positive_float, default=1e-4,
                   help="convergence: largest parameter change of an EM cycle (default 1e-4)")
    c.add_argument("--max-iter", type=bounded_int(1, 100_000), default=2000,
                   help="most EM cycles, 1..100000 (default 2000)")
    c.add_argument("--no-se", action="store_true", help="skip standard errors in the summary")
    c.add_argument("--no-fit", action="store_true", help="skip item-fit flags in the summary")
    c.add_argument("--quiet", action="store_true", help="no progress lines")
    c.add_argument("--online", choices=["OEM", "MEM", "stocking_a"],
                   help="online calibration of the pretest items of the --fixed bank from (adaptive) response data, "
                        "the operational items fixed: OEM, MEM or Stocking's method A (default: off)")
    c.add_argument("--prior-update", choices=["NWU", "OWU", "MWU"], default="MWU",
                   help="with --online: update the θ prior weights never, once or every cycle (default: MWU)")
    c.add_argument("--method", choices=["mml", "cml"], default="mml",
                   help="mml: marginal maximum likelihood (every model); cml: conditional ML of the Rasch model "
                        "(--model rasch), with Andersen's test (default: mml)")
    c.add_argument("--factors", type=factors_arg, default=None, metavar="K|FILE.json",
                   help="multidimensional: K factors (exploratory) or a JSON {factor: [item ids]} (confirmatory); "
                        "--quadrature then counts points per dimension, mirt's defaults unless given (default: none)")
    c.add_argument("--bifactor", metavar="FILE.json", help="bifactor model: a JSON {item id: specific factor}; with "
                   "--factors FILE.json, a two-tier model whose general factors are those (default: none)")
    c.add_argument("--rotate", choices=["oblimin", "geomin", "varimax"], default="oblimin",
                   help="rotation of an exploratory --factors K fit (default: oblimin)")
    c.set_defaults(func=cmd_calibrate)

    sim = sub.add_parser("simulate", help="run a simulation study (TOML) and write its report")
    sim.add_argument("study", help="study file, e.g. simulations/cmcs.toml")
    sim.add_argument("--out", required=True, help="output directory (tables, figures, report.html)")
    sim.add_argument("--scheduler", help="run the cells on a Dask cluster: tcp://HOST:PORT")
    sim.add_argument("--workers", type=bounded_int(1, 256),
                     help="run the cells on a local Dask cluster with this many workers (1..256)")
    sim.add_argument("--no-plots", action="store_true", help="tables only (no matplotlib needed)")
    sim.add_argument("--quiet", action="store_true", help="no progress bar")
    sim.set_defaults(func=cmd_simulate)

    add_service_commands(sub)
    add_security_command(sub)
    add_analyze_command(sub)

    b = sub.add_parser("bank", help="item bank tools")
    bsub = b.add_subparsers(dest="bank_command", required=True)
    bc = bsub.add_parser("check", help="validate a bank and report every problem")
    bc.add_argument("path", help="bank .json/.csv, or a pool directory (bank.json with design.json, standard.json)")
    bc.add_argument("--strict", action="store_true", help="exit 1 on content warnings too (key-letter balance, "
                    "near-duplicate options, a longest-option key, 'all of the above' in a shuffled item); "
                    "default: warnings are printed, exit 0")
    bc.set_defaults(func=cmd_bank_check)
    bi = bsub.add_parser("info", help="counts by domain and status, parameters; the test information curve with --plot")
    bi.add_argument("path", help="bank .json/.csv, or a pool directory")
    bi.add_argument("--plot", metavar="PNG", help="also draw the test information curve into this PNG file "
                                                  "(default: tables only, no file written)")
    bi.add_argument("--no-plot", action="store_true", help=argparse.SUPPRESS)  # old flag; tables only is the default
    bi.set_defaults(func=cmd_bank_info)
    add_lifecycle_commands(bsub)
    bs = bsub.add_parser("schema", help="print the JSON Schema of the bank format")
    bs.add_argument("--out", help="write the schema to this file (default: print it)")
    bs.set_defaults(func=cmd_bank_schema)
    return p


def main(argv: list[str] | None = None) -> int:
    """The ``adaptive`` command; returns the exit status (see :mod:`adaptive.cli_support`)."""
    try:
        args = build_parser().parse_args(argv)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return run_command(args.func, args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
