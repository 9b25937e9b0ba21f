"""``adaptive bank`` commands of the item lifecycle: drift, QTI export and import, promotion, retirement, pool split.

    adaptive bank drift OLD NEW [--csv drift.csv]
    adaptive bank export-qti item_pools/cmcs cmcs_qti.zip
    adaptive bank import-qti cmcs_qti.zip --out bank.json
    adaptive bank promote BANK responses.json --out new_bank.json
    adaptive bank retire BANK ITEM... --reason "..." --out new_bank.json
    adaptive bank split item_pools/cmcs 3 --theta-cut 0.3038 --out pools/
"""

from __future__ import annotations

from pathlib import Path

from .bank import ItemBank
from .cli_support import (
    bounded_int,
    check_output_paths,
    finite_float,
    model_name_arg,
    parse_prior_args,
    positive_float,
    positive_int,
)

__all__ = ["add_lifecycle_commands"]


def cmd_bank_drift(args) -> int:
    from .calibration.drift import parameter_drift

    res = parameter_drift(ItemBank.load(args.old), ItemBank.load(args.new), threshold=args.threshold)
    print(res.summary())
    if args.csv:
        res.to_csv(args.csv)
        print(f"wrote {args.csv}")
    return 0


def cmd_bank_export_qti(args) -> int:
    from .bank.qti import export_qti

    bank = ItemBank.load(args.bank)
    path = export_qti(bank, args.out)
    print(f"wrote {path}: {len(bank)} QTI 3.0 items, the manifest and the parameter companion (adaptive/bank.json)")
    return 0


def cmd_bank_import_qti(args) -> int:
    from .bank.qti import import_qti

    res = import_qti(args.package)
    print(f"read {len(res.bank)} item(s) from {args.package}: {res.with_parameters} with parameters from the "
          f"companion, {len(res.bank) - res.with_parameters} as pretest items with placeholder parameters")
    for ident, reason in res.skipped:
        print(f"  skipped {ident}: {reason}")
    out = Path(args.out)
    if out.suffix.lower() == ".csv":
        res.bank.to_csv(out)
    else:
        res.bank.to_json(out)
    print(f"wrote {out}")
    return 0


def cmd_bank_promote(args) -> int:
    from .answers import read_answers
    from .calibration.online import online_calibrate
    from .calibration.promotion import promote

    check_output_paths(args.out)
    bank = ItemBank.load(args.bank)
    rec = read_answers(args.responses, bank, include_pretest=True)
    cal = online_calibrate(bank, rec, model=args.model, method=args.method, prior_update=args.prior_update,
                           priors=parse_prior_args(args.prior))
    res = promote(bank, cal, rec, min_n=args.min_n, max_se_a=args.max_se_a, max_se_b=args.max_se_b,
                  fit_alpha=args.fit_alpha)
    print(res.summary())
    assert res.bank is not None
    res.bank.to_json(args.out)
    print(f"wrote {args.out}")
    return 0


def cmd_bank_retire(args) -> int:
    from .calibration.promotion import retire

    bank = retire(ItemBank.load(args.bank), args.items, args.reason)
    bank.to_json(args.out)
    print(f"retired {len(args.items)} item(s); wrote {args.out}")
    return 0


def cmd_bank_split(args) -> int:
    from .pools.rotation import split_pool

    bank = ItemBank.load(args.bank)
    res = split_pool(bank, args.pools, theta_cut=args.theta_cut, tolerance=args.tolerance)
    print(res.summary())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for b in res.banks:
        b.to_json(out / f"{b.name}.json")
    print(f"wrote {len(res.banks)} pool banks to {out}/")
    return 0


def add_lifecycle_commands(bsub) -> None:
    """Add the lifecycle subcommands to ``adaptive bank``."""
    bd = bsub.add_parser("drift", help="item parameter drift between two calibrations (robust z, purified link)")
    bd.add_argument("old", help="the earlier calibration: a bank (.json/.csv) or pool directory")
    bd.add_argument("new", help="the later calibration of (some of) the same items")
    bd.add_argument("--threshold", type=positive_float, default=1.645,
                    help="flag |robust z| above this (default: 1.645, Huynh & Meyer's value)")
    bd.add_argument("--csv", help="write every common item's row (shift, robust z, flags) to this CSV")
    bd.set_defaults(func=cmd_bank_drift)
    bq = bsub.add_parser("export-qti", help="write a bank's items as a QTI 3.0 content package (zip)")
    bq.add_argument("bank", help="bank (.json/.csv) or pool directory; every item needs authored content")
    bq.add_argument("out", help="the package to write (.zip)")
    bq.set_defaults(func=cmd_bank_export_qti)
    bi2 = bsub.add_parser("import-qti", help="read a QTI 3.0 content package (single-response choice items)")
    bi2.add_argument("package", help="the QTI content package (.zip with imsmanifest.xml)")
    bi2.add_argument("--out", required=True, help="the bank to write (.json, or .csv for the parameter table)")
    bi2.set_defaults(func=cmd_bank_import_qti)
    bp = bsub.add_parser("promote", help="calibrate a bank's pretest items online from response data and promote "
                                         "those with enough answers, small SEs and good fit")
    bp.add_argument("bank", help="the bank whose pretest items (status pretest) are considered")
    bp.add_argument("responses", help="the service's answer export with the pretest answers (JSON or CSV)")
    bp.add_argument("--out", required=True, help="the new bank (.json): promoted items operational, with history")
    bp.add_argument("--model", default="2pl", type=model_name_arg, help="the pretest items' model (default: 2pl)")
    bp.add_argument("--prior", action="append", help="a prior set (3pl, bilog) or NAME=DIST; repeat for several")
    bp.add_argument("--method", choices=["OEM", "MEM", "stocking_a"], default="MEM",
                    help="online calibration method (default: MEM)")
    bp.add_argument("--prior-update", choices=["NWU", "OWU", "MWU"], default="MWU",
                    help="θ prior weights: never, once or every cycle (default: MWU)")
    bp.add_argument("--min-n", type=positive_int, default=500, help="answers an item needs (default: 500)")
    bp.add_argument("--max-se-a", type=positive_float, default=0.2, help="largest SE of a (default: 0.2)")
    bp.add_argument("--max-se-b", type=positive_float, default=0.2, help="largest SE of b (default: 0.2)")
    bp.add_argument("--fit-alpha", type=positive_float, default=0.01,
                    help="items whose Q1 fit p-value is below this stay pretest (default: 0.01)")
    bp.set_defaults(func=cmd_bank_promote)
    bsp = bsub.add_parser("split", help="split a pool into parallel pools for rotation (blueprint, enemies apart, "
                                         "matched information; MILP)")
    bsp.add_argument("bank", help="the master pool (.json/.csv) or pool directory")
    bsp.add_argument("pools", type=bounded_int(2, 50), help="how many pools, 2..50")
    bsp.add_argument("--theta-cut", type=finite_float, required=True, help="the cut (θ) where information must match")
    bsp.add_argument("--tolerance", type=positive_float, default=0.01,
                     help="largest relative difference of a pool's information from its share (default: 0.01)")
    bsp.add_argument("--out", required=True, help="directory for the pool banks (<name>-pool<k>.json)")
    bsp.set_defaults(func=cmd_bank_split)
    br = bsub.add_parser("retire", help="retire items (never given again; kept for scoring), with a reason")
    br.add_argument("bank", help="the bank (.json/.csv) or pool directory")
    br.add_argument("items", nargs="+", help="the item ids to retire")
    br.add_argument("--reason", required=True, help="why (kept in each item's history), e.g. 'exposed in a leak'")
    br.add_argument("--out", required=True, help="the new bank (.json)")
    br.set_defaults(func=cmd_bank_retire)
