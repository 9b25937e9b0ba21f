"""``adaptive security``: the security report of one testing window from the service's answer export.

    adaptive security responses.json --bank item_pools/cmcs --out report.html
    adaptive security responses.json --bank item_pools/cmcs --compromised leaked.txt --csv flags/
    adaptive security responses.json --bank item_pools/cmcs --after 2026-11-15

The export is ``GET /api/v1/admin/responses?format=json`` (or a CSV with a header naming
person,item,response and any of option,seconds,answered_at,site,window).
"""

from __future__ import annotations

from pathlib import Path

from .bank import ItemBank
from .cli_support import _table, bounded_float, check_output_paths, date_arg, nonnegative_int, positive_int
from .exceptions import ScoringError

__all__ = ["add_security_command", "cmd_security"]

#: a false-positive or false-discovery rate
RATE = bounded_float(0.0, 0.5, "a false-positive rate such as 0.01")


def _compromised(text: str | None, bank: ItemBank):
    from .answers import parse_item_ids, read_item_ids

    if text is None:
        return None
    ids = read_item_ids(text) if Path(text).is_file() else parse_item_ids(text)
    if not ids:
        raise ScoringError(f"--compromised {text!r} names no items; give item ids (comma-separated or a file)")
    unknown = [i for i in ids if i not in bank.index]
    if unknown:
        raise ScoringError(f"--compromised: {len(unknown)} item id(s) are not in bank {bank.name!r}, e.g. "
                           f"{unknown[:3]}; check the list against the bank the candidates took")
    return ids


def _design(args):
    """The design for the adaptive null: ``--design``, else a pool directory's design.json, else none."""
    from .cat.design import ExamDesign

    if args.design is not None:
        return None if args.design.lower() == "none" else ExamDesign.load(args.design)
    beside = Path(args.bank) / "design.json"
    return ExamDesign.load(beside) if Path(args.bank).is_dir() and beside.is_file() else None


def cmd_security(args) -> int:
    from .security import read_records
    from .security.report import analyse, write_html

    check_output_paths(args.out)
    bank = ItemBank.load(args.bank)
    records = read_records(args.export, bank, include_pretest=args.include_pretest)
    comp = _compromised(args.compromised, bank)
    design = _design(args)
    rep = analyse(bank, records, compromised=comp, after=args.after, alpha=args.alpha, fdr=args.fdr,
                  rapid_method=args.rapid, correction=args.correction, design=design,
                  null_simulees=args.null_simulees, rng=args.seed)
    print(rep.summary())
    flagged = sorted((r for r in rep.candidates.to_records() if r["flags"]), key=lambda r: -r["flags"].count(";"))
    shown = flagged[: args.show]
    if shown:
        rows = [[r["candidate"] or r["person_id"], r["site"] or "-", str(r["n"]), _f(r["lz_star"]), _f(r["lt_z"]),
                 _f(r["effort"], 2), _f(r["z_preknowledge"]), r["flags"]] for r in shown]
        print(_table(["candidate", "site", "answers", "lz*", "l_t z", "effort", "z preknow", "flags"], rows))
    if len(flagged) > len(shown):
        more = f"... and {len(flagged) - len(shown)} more" if shown else f"{len(flagged)} candidates"
        print(f"{more} flagged (all in the report and --csv; --show N prints more)")
    if args.csv:
        out = Path(args.csv)
        out.mkdir(parents=True, exist_ok=True)
        rep.candidates.to_csv(out / "candidates.csv")
        if rep.item_scan is not None:
            rep.item_scan.to_csv(out / "items.csv")
        if rep.similarity is not None:
            import csv

            with (out / "pairs.csv").open("w", newline="", encoding="utf-8") as fh:
                recs = rep.similarity.to_records()
                w = csv.DictWriter(fh, fieldnames=list(recs[0]) if recs else ["person_a", "person_b"],
                                   lineterminator="\n")
                w.writeheader()
                w.writerows(recs)
        print(f"wrote the tables to {out}/")
    if args.out:
        try:
            title = args.title or f"Security report: {bank.name}"
            path = write_html(rep, args.out, title=title, plots=not args.no_plots)
        except ImportError:
            raise ImportError("the report's figures need matplotlib: pip install 'adaptive-cat[plots]' (or pass "
                              "--no-plots)") from None
        print(f"wrote {path}")
    return 0


def _f(v, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def add_security_command(sub) -> None:
    s = sub.add_parser("security", help="security report of a testing window: person fit, response times, rapid "
                                        "guessing, pre-knowledge, answer similarity")
    s.add_argument("export", help="the service's answer export: JSON from /api/v1/admin/responses?format=json, or a "
                                  "CSV with person,item,response[,option,seconds,answered_at,site,window]")
    s.add_argument("--bank", required=True, help="the bank the candidates took (.json, .csv or a pool directory)")
    s.add_argument("--compromised", help="suspected leaked items: a file of item ids or a comma-separated list")
    s.add_argument("--after", type=date_arg, help="scan items for answers that got easier and faster from this date "
                                               "(YYYY-MM-DD, UTC); without --compromised its flagged items are used")
    s.add_argument("--alpha", type=RATE, default=0.01, help="false-positive rate per statistic "
                                                                    "(default: 0.01)")
    s.add_argument("--fdr", type=RATE, default=0.05, help="false-discovery rate of the item scan "
                                                                  "(default: 0.05)")
    s.add_argument("--correction", choices=["bonferroni", "bh"], default="bonferroni",
                   help="multiplicity control over candidate pairs: bonferroni (family-wise) or bh (false-discovery "
                        "rate) (default: bonferroni)")
    s.add_argument("--rapid", choices=["normative", "mixture"], default="normative",
                   help="rapid-guessing thresholds: normative (10%% of the mean item time, at most 10 s) or mixture "
                        "(a fast mode in each item's log times) (default: normative)")
    s.add_argument("--include-pretest", action="store_true", help="also analyse pretest answers")
    s.add_argument("--out", help="write the HTML report here")
    s.add_argument("--csv", help="write candidates.csv, pairs.csv (and items.csv) into this directory")
    s.add_argument("--title", help="the report's title (default: 'Security report' with the bank's name)")
    s.add_argument("--design", help="the adaptive design the candidates took: lz* p-values then come from honest "
                                    "candidates simulated through it (default: design.json of a pool directory given "
                                    "as --bank; 'none' for N(0, 1) p-values)")
    s.add_argument("--null-simulees", type=positive_int, default=5000,
                   help="simulated honest candidates for the lz* reference distribution (default: 5000)")
    s.add_argument("--seed", type=nonnegative_int, default=0, help="seed of that simulation (default: 0)")
    s.add_argument("--show", type=nonnegative_int, default=20, help="flagged candidates printed (default: 20)")
    s.add_argument("--no-plots", action="store_true", help="no figures in the report (no matplotlib needed)")
    s.set_defaults(func=cmd_security)
