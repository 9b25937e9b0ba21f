"""``adaptive score``: ability estimates for every row of a response file, with an optional pass standard.

A raw-score standard ("R of L correct") means R on a named reference form: by default the pool's
standard (``standard.json`` beside the bank, e.g. 52 of 75 on the CMCS reference form), or a form
given with ``--form`` (a file of item ids, or ``responses`` for the file's own items). The θ cut it
converts to (inverse test characteristic curve) is printed, and the decision uses it; the pool's
reporting scale gives the scaled score when the bank is a pool directory.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from .bank import ItemBank
from .cli_support import _table, finite_float, positive_float
from .data_io import read_responses
from .exceptions import ScoringError
from .scoring import ScoreScale, estimate_ability, pass_probability, theta_for_raw_score

__all__ = ["add_score_command", "cmd_score"]


def _standard_of(bank_path: str) -> tuple[dict | None, Path | None]:
    """The pool standard beside a bank (``standard.json`` in the pool directory or next to the bank file)."""
    p = Path(bank_path)
    path = (p if p.is_dir() else p.parent) / "standard.json"
    if not path.is_file():
        return None, None
    try:
        return json.loads(path.read_text(encoding="utf-8")), path
    except (OSError, ValueError):
        return None, None


def _reference_form(args, bank: ItemBank, table) -> tuple[list[str], str]:
    """The item ids the raw cut counts on, and how to name them in the printed line."""
    if args.form == "responses":
        return list(table.item_ids), f"the response file's {len(table.item_ids)} items"
    if args.form is not None:
        path = Path(args.form)
        try:
            ids = [i for i in path.read_text(encoding="utf-8").replace(",", "\n").split() if i]
        except OSError as err:
            raise ScoringError(f"--form {args.form!r}: cannot read it ({err.strerror or err}); give a file of item "
                               "ids (one per line), or 'responses'") from None
        unknown = [i for i in ids if i not in bank.index]
        if unknown or not ids:
            raise ScoringError(f"--form {args.form!r}: {len(unknown)} item id(s) not in the bank, e.g. {unknown[:3]}"
                               if unknown else f"--form {args.form!r} lists no item ids")
        return ids, f"the {len(ids)} items of {args.form}"
    standard, where = _standard_of(args.bank)
    if standard is None or not standard.get("reference_form"):
        raise ScoringError("--raw-cut needs the form it counts on: the bank has no pool standard (standard.json) "
                           "beside it; give --form FILE (item ids) or --form responses (the file's own items)")
    ids = list(standard["reference_form"])
    return ids, f"the {len(ids)}-item reference form of {where}"


def _scale_of(args, theta_cut: float) -> ScoreScale:
    standard, _ = _standard_of(args.bank)
    spec = dict((standard or {}).get("scale") or {})
    spec["theta_cut"] = theta_cut
    return ScoreScale(**spec)


def cmd_score(args) -> int:
    bank = ItemBank.load(args.bank)
    table = read_responses(args.responses, bank, layout=args.layout)
    theta_cut = args.theta_cut
    if theta_cut is not None and not -20.0 <= theta_cut <= 20.0:
        raise ScoringError(f"--theta-cut {theta_cut:g} is outside -20..20 logits; give the cut on the bank's θ scale")
    if args.raw_cut is not None:
        ids, named = _reference_form(args, bank, table)
        if args.raw_cut >= len(ids):
            raise ScoringError(f"--raw-cut {args.raw_cut:g} is not below the {len(ids)} items of {named}")
        form = bank.compile().subset([bank.index[i] for i in ids])
        theta_cut = float(theta_for_raw_score(form, args.raw_cut))
        print(f"raw cut {args.raw_cut:g} of {len(ids)} on {named} -> theta cut {theta_cut:.4f}")
    scale = _scale_of(args, theta_cut) if theta_cut is not None else None
    x = table.for_bank(bank)
    est = estimate_ability(bank, x, method=args.method)
    raw = np.nansum(x, axis=1)
    n_ans = np.sum(~np.isnan(x), axis=1)
    header = ["person", "raw", "n_answered", "theta", "se", "at_bound"]
    rows = [[pid, f"{int(raw[n])}", f"{int(n_ans[n])}", f"{est.theta[n]:.3f}", f"{est.se[n]:.3f}",
             str(int(est.at_bound[n]))] for n, pid in enumerate(table.person_ids)]
    full = [[r[0], r[1], r[2], repr(float(est.theta[n])), repr(float(est.se[n])), r[5]] for n, r in enumerate(rows)]
    if scale is not None and theta_cut is not None:
        p_pass = (pass_probability(est, theta_cut) if args.method == "eap"
                  else pass_probability(theta=est.theta, se=est.se, theta_cut=theta_cut, method="normal"))
        passed = est.theta >= theta_cut
        scaled = scale.to_reported(est.theta, passed, ~passed, np.zeros_like(passed))
        header += ["scaled", "p_pass", "decision"]
        for n, (r, f) in enumerate(zip(rows, full, strict=True)):
            decision = "pass" if passed[n] else "fail"
            r += [f"{scaled[n]:.{scale.decimals}f}", f"{p_pass[n]:.3f}", decision]
            f += [f"{scaled[n]:.{scale.decimals}f}", repr(float(p_pass[n])), decision]
    if args.subscores:
        sub_header, sub_rows, sub_full = _subscore_columns(bank, x, args.method)
        header += sub_header
        for r, f, sr, sf in zip(rows, full, sub_rows, sub_full, strict=True):
            r += sr
            f += sf
    if args.out:
        with open(args.out, "w", newline="") as fh:  # every printed column, at full precision
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(header)
            w.writerows(full)
        print(f"wrote {len(rows)} estimates to {args.out}")
    else:
        print(_table(header, rows))
    return 0


def _subscore_columns(bank: ItemBank, x: np.ndarray, method: str):
    """``--subscores``: each domain's subscore and SE from the bank's subscore model (EAP, or MAP with
    ``--method map``), as printed and as written."""
    if bank.subscores is None:
        raise ScoringError("--subscores: the bank has no subscore model; give a pool directory with a subscores.json "
                           "(or a bank JSON with a 'subscores' field)")
    from .scoring.multidim import estimate_vector

    sub = bank.subscores.bank
    values = np.full((x.shape[0], len(sub)), np.nan)
    for j, iid in enumerate(sub.item_ids):
        values[:, j] = x[:, bank.index[iid]]
    est = estimate_vector(sub, values, method="map" if method == "map" else "eap")
    header = [h for f in sub.factor_names for h in (f, f"{f} SE")]
    shown = [[f"{round(float(v), 3) + 0.0:.3f}" for k in range(sub.n_dims) for v in (est.theta[n, k], est.se[n, k])]
             for n in range(x.shape[0])]
    exact = [[repr(float(v)) for k in range(sub.n_dims) for v in (est.theta[n, k], est.se[n, k])]
             for n in range(x.shape[0])]
    return header, shown, exact


def add_score_command(sub, layout_help: str) -> None:
    s = sub.add_parser("score", help="estimate ability for every row of a response file")
    s.add_argument("responses", help="CSV: wide (one column per item id) or long (person,item,response)")
    s.add_argument("--bank", required=True, help="bank (.json or .csv) or pool directory (with its standard.json)")
    s.add_argument("--method", default="eap", choices=["eap", "map", "ml", "wle"],
                   help="estimator: eap (posterior mean), map (posterior mode), ml (maximum likelihood), wle "
                        "(Warm's weighted likelihood) (default: eap)")
    s.add_argument("--layout", default="auto", choices=["auto", "wide", "long"], help=layout_help)
    g = s.add_mutually_exclusive_group()
    g.add_argument("--theta-cut", type=finite_float, help="θ cut for pass probability and decision")
    g.add_argument("--raw-cut", type=positive_float, help="raw cut R (of L correct) on the reference form, "
                                                          "converted to θ by the form's TCC and printed")
    s.add_argument("--form", help="the form --raw-cut counts on: a file of item ids, or 'responses' for the file's "
                                  "own items (default: the pool standard's reference form)")
    s.add_argument("--subscores", action="store_true",
                   help="add each content domain's subscore and SE from the bank's subscore model (a pool "
                        "directory's subscores.json) (default: off)")
    s.add_argument("--out", help="write every column to a CSV instead of printing a table")
    s.set_defaults(func=cmd_score)
