"""``adaptive calibrate --factors / --bifactor / --model nominal``: multidimensional and nominal calibration."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .cli_support import parse_prior_args
from .exceptions import AdaptiveError

__all__ = ["factors_arg", "calibrate_multidim"]


def factors_arg(text: str):
    """``--factors``: a number of factors (exploratory) or a JSON file ``{factor: [item ids]}`` (confirmatory)."""
    import argparse

    if text.strip().isdigit():
        return int(text)
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text!r} is neither a number of factors nor a JSON file of "
                                         '{"factor": ["item id", ...]}')
    try:
        spec = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise argparse.ArgumentTypeError(f"{text}: not JSON ({err})") from None
    if not isinstance(spec, dict) or not all(isinstance(v, list) for v in spec.values()):
        raise argparse.ArgumentTypeError(f'{text}: expected {{"factor": ["item id", ...], ...}}')
    return spec


def _bifactor_labels(path: str, item_ids) -> list:
    """``--bifactor FILE``: JSON ``{item id: specific factor}`` (items not named load on the general factor only)."""
    try:
        spec = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise AdaptiveError(f"--bifactor {path}: cannot read a JSON object of {{item id: specific factor}} ({err})"
                            ) from None
    if not isinstance(spec, dict):
        raise AdaptiveError(f"--bifactor {path}: expected a JSON object {{item id: specific factor}}")
    unknown = sorted(set(spec) - set(item_ids))
    if unknown:
        raise AdaptiveError(f"--bifactor {path}: items {unknown[:5]} are not columns of the data")
    return [spec.get(i) for i in item_ids]


def calibrate_multidim(args, table, progress) -> int:
    from .calibration import calibrate
    from .cli_support import check_output_paths

    if args.out and Path(args.out).suffix.lower() not in (".json", ".csv"):
        raise AdaptiveError(f"--out {args.out!r}: end the name in .json (items, factors and latent covariance) or "
                            ".csv (mirt's columns: item_id, model, a1..aK, d)")
    check_output_paths(args.out)
    bifactor = _bifactor_labels(args.bifactor, table.item_ids) if args.bifactor else None
    quad = None if args.quadrature == 61 else args.quadrature
    fixed = None
    if args.fixed:
        from .bank.multidim import MultidimBank

        path = Path(args.fixed)
        if path.suffix.lower() == ".csv":  # a CSV's a1..aK are the factors of --factors FILE.json, in its order
            order = tuple(args.factors) if isinstance(args.factors, dict) else None
            fixed = MultidimBank.read_csv(path, factor_names=order)
        else:
            fixed = MultidimBank.read_json(path)
    fit = calibrate(table, model=args.model, factors=args.factors, bifactor=bifactor, quadrature=quad, tol=args.tol,
                    max_iter=args.max_iter, progress=progress, priors=parse_prior_args(args.prior), fixed=fixed)
    print(fit.summary())
    if any(m == "nominal" for m in fit.models):
        nom = fit.nominal_parameters()
        c = nom["ak"].shape[1]
        print(f"{'item':<14}{'a1':>8}" + "".join(f"{f'ak{q}':>8}" for q in range(c)) + "".join(
            f"{f'd{q}':>8}" for q in range(c)) + "   (mirt's nominal parameterization)")
        for j, iid in enumerate(fit.item_ids):
            print(f"{iid:<14}{nom['a1'][j]:>8.3f}" + "".join(f"{v:>8.3f}" for v in nom["ak"][j]) + "".join(
                f"{v:>8.3f}" for v in nom["d"][j]))
        return _write(fit, args)
    k = fit.n_dims
    if fit.exploratory:
        rot = fit.rotate(args.rotate)
        print(f"{args.rotate} loadings (factor correlations below):")
        loadings, names = rot.loadings, [f"F{q + 1}" for q in range(k)]
    else:
        loadings, names = fit.loadings(), list(fit.factor_names)
    se = None if args.no_se or fit.integration.startswith("quasi") else fit.standard_errors()
    if se is None and not args.no_se:
        print("(standard errors of a quasi-Monte Carlo fit take one E-step per parameter: fit.standard_errors() in "
              "Python)")
    head = f"{'item':<14}" + "".join(f"{n[:9]:>10}" for n in names) + "   slopes (SE)"
    print(head)
    for j, iid in enumerate(fit.item_ids):
        slopes = " ".join(f"{v:.3f}" + (f" ({se.slopes[j, q]:.3f})" if se is not None and not np.isnan(
            se.slopes[j, q]) else "") for q, v in enumerate(fit.slopes[j]) if v != 0)
        print(f"{iid:<14}" + "".join(f"{v:>10.3f}" for v in loadings[j]) + f"   {slopes}")
    if fit.exploratory and k > 1:
        for q in range(k):
            print(f"{names[q]:<14}" + "".join(f"{v:>10.3f}" for v in rot.factor_correlations[q]))
    return _write(fit, args)


def _write(fit, args) -> int:
    if args.out:
        out = Path(args.out)
        if out.suffix.lower() == ".json":
            fit.bank.to_json(out)
        elif out.suffix.lower() == ".csv":
            fit.bank.to_csv(out)
        else:
            raise AdaptiveError(f"--out {args.out!r}: end the name in .json (items, factors and latent covariance) "
                                "or .csv (mirt's columns: item_id, model, a1..aK, d)")
        print(f"wrote {out}")
    return 0 if fit.converged else 1
