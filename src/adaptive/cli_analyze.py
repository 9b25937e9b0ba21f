"""``adaptive analyze``: classical item analysis of a response export (p, discrimination, distractors, alpha).

    adaptive analyze responses.json --bank item_pools/cmcs --out items.html --csv items/
    adaptive analyze calibration/examples/cmcs_responses.csv --bank item_pools/cmcs

The service's long export (JSON, or CSV with person,item,response[,option,...]) gives the distractor analysis;
a wide CSV (one column per item) gives p, discrimination and alpha.
"""

from __future__ import annotations

from pathlib import Path

from .bank import ItemBank
from .cli_support import _table, bounded_float, check_output_paths, nonnegative_int

__all__ = ["add_analyze_command", "cmd_analyze"]

#: a share of candidates, or a correlation bound
SHARE = bounded_float(0.0, 1.0, "a share such as 0.05")


def cmd_analyze(args) -> int:
    from .answers import read_answers
    from .calibration.classical import item_analysis, write_html

    check_output_paths(args.out)
    bank = ItemBank.load(args.bank)
    rec = read_answers(args.responses, bank)
    res = item_analysis(bank, rec, min_share=args.min_share, low_r=args.low_r)
    print(res.summary())
    flagged = [r for r in res.items.to_records() if r["flags"]][: args.show]
    if flagged:
        print(_table(["item", "n", "key", "p", "r", "flags"],
                     [[r["item_id"], str(r["n"]), r["key_option"] or "-", f"{r['p_value']:.2f}",
                       "-" if r["r"] is None else f"{r['r']:.2f}", r["flags"]] for r in flagged]))
    if args.csv:
        out = Path(args.csv)
        out.mkdir(parents=True, exist_ok=True)
        res.items.to_csv(out / "items.csv")
        if res.options is not None:
            res.options.to_csv(out / "options.csv")
        print(f"wrote the tables to {out}/")
    if args.out:
        try:
            path = write_html(res, args.out, title=args.title or f"Item analysis: {bank.name}",
                              plots=not args.no_plots)
        except ImportError:
            raise ImportError("the page's trace plots need matplotlib: pip install 'adaptive-cat[plots]' (or pass "
                              "--no-plots)") from None
        print(f"wrote {path}")
    return 0


def add_analyze_command(sub) -> None:
    a = sub.add_parser("analyze", help="classical item analysis: p-values, discrimination, distractors, alpha")
    a.add_argument("responses", help="the service's answer export (JSON, or long CSV with person,item,response and "
                                     "option) or a wide response CSV (one column per item id)")
    a.add_argument("--bank", required=True, help="the bank the responses are to (.json, .csv or a pool directory)")
    a.add_argument("--min-share", type=SHARE, default=0.05, help="a distractor chosen by fewer is flagged as "
                                                                  "non-functioning (default: 0.05)")
    a.add_argument("--low-r", type=SHARE, default=0.15, help="discrimination below this is flagged (default: 0.15)")
    a.add_argument("--out", help="write the HTML page (tables, option trace lines) here")
    a.add_argument("--csv", help="write items.csv and options.csv into this directory")
    a.add_argument("--title", help="the page's title (default: 'Item analysis' with the bank's name)")
    a.add_argument("--show", type=nonnegative_int, default=20, help="flagged items printed (default: 20)")
    a.add_argument("--no-plots", action="store_true", help="no trace plots (no matplotlib needed)")
    a.set_defaults(func=cmd_analyze)
