"""``adaptive.calibrate``: from a response matrix (or file) to a calibrated item bank."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np

from ..bank import ItemBank, theta_grid
from ..data_io import ResponseTable, read_responses
from ..exceptions import CalibrationError, ConvergenceWarning, ResponseValidationError
from ..irt.arrays import GRID_POINTS_MAX
from ..irt.mixed import from_irt
from ..irt.registry import Family, canonical_model, model_spec
from ..scoring.responses import checked_category_counts
from .em import EMSettings, Problem, run_em
from .priors import parse_priors
from .result import CalibrationResult
from .starts import start_values as _start_values

__all__ = ["calibrate", "as_response_data"]



def as_response_data(responses, item_ids=None):
    """``(values (N, I) float with NaN, item_ids, person_ids)`` from an array, a ResponseTable, a CSV path or a
    data frame (anything with ``columns`` and ``to_numpy()``)."""
    return _response_data(responses, item_ids)[:3]


def _response_data(responses, item_ids=None):
    """:func:`as_response_data` plus the data's :func:`category_counts`."""
    person_ids = None
    if isinstance(responses, (str, Path)):
        responses = read_responses(responses)
    if isinstance(responses, ResponseTable):
        values, ids, person_ids = responses.values, responses.item_ids, responses.person_ids
    elif hasattr(responses, "columns") and hasattr(responses, "to_numpy"):
        ids = tuple(str(c) for c in responses.columns)
        values = responses.to_numpy(dtype=float, na_value=np.nan)
        person_ids = tuple(str(i) for i in getattr(responses, "index", range(values.shape[0])))
    else:
        try:
            values = np.array(responses, dtype=float)
        except (TypeError, ValueError) as err:
            raise ResponseValidationError(f"responses must be numbers (categories), NaN where not administered: {err}"
                                          ) from None
        ids = None
    if values.ndim != 2 or values.shape[0] < 2 or values.shape[1] < 1:
        raise ResponseValidationError(f"responses must be a persons x items matrix with at least 2 rows; got shape "
                                      f"{values.shape}")
    if item_ids is not None:
        ids = tuple(str(i) for i in item_ids)
    if ids is None:
        ids = tuple(f"I{j + 1:04d}" for j in range(values.shape[1]))
    if len(ids) != values.shape[1]:
        raise ResponseValidationError(f"{len(ids)} item ids for {values.shape[1]} response columns")
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise ResponseValidationError(f"duplicate item ids {dup[:10]}: every column needs its own id")
    summary = checked_category_counts(values, ids, person_ids)
    if person_ids is None:
        person_ids = tuple(map(str, range(1, values.shape[0] + 1)))
    return values, ids, tuple(person_ids), summary


def _names_nominal(model) -> bool:
    names = [model] if isinstance(model, str) else list(model.values() if isinstance(model, dict) else model)
    return any(str(m).strip().lower() == "nominal" for m in names)


def _models_for(model, ids, fixed_models):
    if isinstance(model, str):
        per = {i: model for i in ids}
    elif isinstance(model, dict):
        missing = [i for i in ids if i not in model and i not in fixed_models]
        if missing:
            raise CalibrationError(f"no model given for items {missing[:10]}; give model={{id: name}} for every "
                                   "item, or one name for all")
        per = dict(model)
    else:
        seq = list(model)
        if len(seq) != len(ids):
            raise CalibrationError(f"model lists {len(seq)} names for {len(ids)} items")
        per = dict(zip(ids, seq))
    per.update(fixed_models)
    out = []
    for i in ids:
        try:
            out.append(canonical_model(per[i]))
        except ValueError as err:
            raise CalibrationError(f"item {i!r}: {err}") from None
    return out


def _free_mask(models, n_cat, p_int):
    free = np.zeros((len(models), p_int), dtype=bool)
    tied = np.zeros(len(models), dtype=bool)
    for j, m in enumerate(models):  # per item, once per calibration
        spec = model_spec(m)
        free[j] = spec.free_internal(int(n_cat[j]), p_int)
        tied[j] = spec.slope == "common"
    return free, tied


def _multidim_priors(priors) -> dict:
    """Priors with factors=: ``a`` (normal or lognormal, every free slope), ``intercept`` (normal, every free
    intercept), ``c`` (beta, the M3PL lower asymptote)."""
    try:
        md = parse_priors(priors)
    except ValueError as err:
        raise CalibrationError(str(err)) from None
    allowed = {"a": ("normal", "lognormal"), "intercept": ("normal",), "c": ("beta",)}
    for name, prior in md.items():
        if name not in allowed:
            raise CalibrationError(f"priors: {name!r} has no multidimensional form; with factors= give priors on 'a' "
                                   "(each slope), 'intercept' (each intercept) or 'c' (the M3PL lower asymptote)")
        if prior.kind not in allowed[name]:
            raise CalibrationError(f"priors: {name} ~ {prior} -- the prior on {name!r} must be "
                                   f"{' or '.join(allowed[name])}")
    return md


def calibrate(responses, model="2pl", quadrature=None, priors=None, fixed=None, groups=None, *,
              item_ids=None, bounds=(-6.0, 6.0), reference_group=None, estimate_latent=None, tol=1e-4,
              max_iter=2000, accelerate="squarem", progress=None, name="calibrated", method="mml", factors=None,
              correlated=True, bifactor=None, integration="auto"):
    """Fit item parameters by marginal maximum likelihood (EM; MAP with ``priors``), or Rasch by CML.

    Parameters
    ----------
    responses : (N, I) array (NaN = not administered), a response CSV path (wide or long; see
        :func:`adaptive.data_io.read_responses`), a :class:`~adaptive.data_io.ResponseTable` or a data frame.
    model : one of ``rasch, 1pl, 2pl, 3pl, 4pl, graded, gpcm, pcm`` for every item, a list (one per
        column) or ``{item_id: model}``. ``rasch``/``pcm`` fix slopes at 1 and estimate the latent SD;
        ``1pl`` estimates one common slope with N(0, 1).
    quadrature : number of equally spaced nodes on ``bounds`` (default 61 on [-6, 6]), or the nodes.
    priors : ``None`` (ML), a named set (``"3pl"``, ``"bilog"``) or ``{param: "beta(6, 16)", ...}``;
        see :mod:`adaptive.calibration.priors`.
    fixed : ItemBank -- items of the data found in it keep its parameters (fixed-parameter calibration:
        the latent mean and SD are then estimated, as in FIPC with multiple EM cycles updating the prior). With
        ``factors={name: [ids]}``: a :class:`~adaptive.bank.multidim.MultidimBank` with factors of the same names
        (the fixed items need not be listed in ``factors``; their loadings come with them); the means, variances
        and correlations of the factors they load on are estimated (by QMC beyond 3 factors too). ``groups`` with
        ``factors={...}``: the reference group is N(0, R); every other group's means, variances and correlations
        are estimated (``fit.groups``; product grids only).
    groups : (N,) labels -- multiple-group calibration with all items shared (anchors); the reference
        group (``reference_group``, default the first label in sorted order) is N(0, 1), the others'
        means and SDs are estimated. Give group-specific items separate columns.
    estimate_latent : override which latent moments are estimated: ``None`` (automatic), ``False``
        (all fixed at N(0, 1)) or ``True`` (means and SDs of every group but the reference).
    tol : largest absolute parameter change of an EM step at convergence (internal scale).
    accelerate : ``"squarem"`` (default: SQUAREM extrapolation of EM steps that also expand the latent scale,
        PX-EM, where the model allows it) or ``"none"`` (textbook Bock-Aitkin EM steps).
    progress : callable ``(iteration, loglik, max_change)`` called once per cycle.
    method : ``"mml"`` (default) or ``"cml"``: conditional maximum likelihood for ``model="rasch"`` or ``"pcm"``
        (no latent distribution; see :mod:`adaptive.calibration.cml`), returning a
        :class:`~adaptive.calibration.cml.CMLResult`.

    factors : multidimensional models (``2pl`` = M2PL, ``graded`` = MGRM, ``gpcm``): an int K (exploratory, mirt's
        identification; ``fit.rotate("oblimin")``) or ``{factor name: [item ids]}`` (confirmatory; latent
        correlations estimated unless ``correlated=False``, means 0 and variances 1). ``quadrature`` is then the
        points per dimension (mirt's ``quadpts``; default 61 / 31 / 15 / 9 / 7 for 1..5 factors). ``model="nominal"``
        fits Bock's nominal response model. ``integration``: ``"auto"`` (a product grid up to 3 factors,
        quasi-Monte Carlo EM with 4,096 Sobol points beyond; the result's ``integration`` says which), ``"grid"``
        (up to 5 factors) or ``"qmc"``. ``bifactor``: one specific-factor label per item (None: general factor
        only) -- a bifactor model with dimension reduction (21 points per dimension by default); with
        ``factors={general factor: [item ids]}`` as well, a two-tier model (Cai 2010): up to 3 correlated general
        factors (correlations estimated unless ``correlated=False``) and the orthogonal specific factors. All return a
        :class:`~adaptive.calibration.multidim_result.MultidimResult`.

    Returns
    -------
    CalibrationResult -- frozen; ``.bank``, ``.loglik``, ``.converged``, ``.n_iter``,
    ``.standard_errors``, ``.summary()``, ``.item_fit()``, ``.person_fit()``.
    """
    started = time.perf_counter()
    values, ids, person_ids, (answered, cat_counts) = _response_data(responses, item_ids)
    if method == "cml":
        if str(model).lower() not in ("rasch", "pcm"):
            raise CalibrationError(f"method='cml' fits model='rasch' (0/1 items) or 'pcm' (partial credit); got "
                                   f"{model!r}. Use method='mml' for other models")
        from .cml import fit_cml

        return fit_cml(values, item_ids=ids, model=str(model).lower(), tol=min(tol, 1e-6))
    if method != "mml":
        raise CalibrationError(f"method={method!r}: use 'mml' (marginal ML, every model) or 'cml' (Rasch)")
    if factors is not None or bifactor is not None or _names_nominal(model):
        if (groups is not None or fixed is not None) and (bifactor is not None or factors is None):
            raise CalibrationError("fixed items and groups are not available with bifactor= or the nominal model "
                                   "yet; calibrate without them")
        md_priors = _multidim_priors(priors)
        from .multidim_api import fit_bifactor, fit_multidim

        if quadrature is not None and not isinstance(quadrature, (int, np.integer)):
            raise CalibrationError("with factors=, quadrature is the number of points per dimension")
        if bifactor is not None:
            if factors is not None and not isinstance(factors, dict):
                raise CalibrationError("with bifactor=, factors= names the general factors of a two-tier model as "
                                       "{general factor: [item ids]}; leave it out for one general factor 'G'")
            return fit_bifactor(values, ids, person_ids, model, bifactor, quadrature=quadrature, bounds=bounds,
                                tol=tol, max_iter=max_iter, accelerate=accelerate, progress=progress, priors=md_priors,
                                general=factors, correlated=correlated)
        return fit_multidim(values, ids, person_ids, model, factors, quadrature=quadrature, bounds=bounds, tol=tol,
                            max_iter=max_iter, accelerate=accelerate, progress=progress, correlated=correlated,
                            integration=integration, priors=md_priors, fixed=fixed, groups=groups,
                            reference_group=reference_group)
    try:
        priors_d = parse_priors(priors)
    except ValueError as err:
        raise CalibrationError(str(err)) from None
    if accelerate not in ("squarem", "none"):
        raise CalibrationError(f"accelerate={accelerate!r}: choose 'squarem' or 'none'")
    if quadrature is None:
        quadrature = 61
    if isinstance(quadrature, (int, np.integer)):
        if not 5 <= quadrature <= GRID_POINTS_MAX:
            raise CalibrationError(f"quadrature={quadrature}: use 5 to {GRID_POINTS_MAX} nodes (61 is the default)")
        theta = theta_grid((float(bounds[0]), float(bounds[1]), int(quadrature)))
    else:
        try:
            theta = theta_grid(np.asarray(quadrature, dtype=float))
        except ValueError as err:
            raise CalibrationError(f"quadrature: {err}") from None
    # fixed items
    fixed_items = {}
    if fixed is not None:
        if not isinstance(fixed, ItemBank):
            fixed = ItemBank(items=list(fixed))
        fixed_items = {it.id: it for it in fixed.items if it.id in set(ids)}
        if not fixed_items:
            raise CalibrationError(f"none of the fixed bank's {len(fixed)} items is a column of the data; "
                                   "fixed-parameter calibration needs anchor items in the data")
    models = _models_for(model, ids, {i: it.model for i, it in fixed_items.items()})
    n_items = len(ids)
    # categories
    # the largest category each item received (-1: never answered)
    observed_max = np.where(answered > 0, cat_counts.shape[1] - 1 - np.argmax(cat_counts[:, ::-1] > 0, axis=1), -1)
    n_cat = np.empty(n_items, dtype=int)
    problems = []
    for j, (iid, m) in enumerate(zip(ids, models)):
        fam = model_spec(m).family
        if iid in fixed_items:
            n_cat[j] = fixed_items[iid].n_cat
        elif fam == Family.DICHOTOMOUS:
            n_cat[j] = 2
        else:
            n_cat[j] = max(observed_max[j] + 1, 2)
        if observed_max[j] >= n_cat[j]:
            problems.append(f"item {iid!r} ({m}): response {observed_max[j]} but the model has categories "
                            f"0..{n_cat[j] - 1}" + ("; a dichotomous model needs 0/1 responses (use 'graded' or "
                                                    "'gpcm' for more categories)" if fam == Family.DICHOTOMOUS else ""))
            continue
        if iid in fixed_items:
            continue
        if answered[j] == 0:
            problems.append(f"item {iid!r}: no responses; drop the column or fix the item's parameters")
            continue
        seen = np.flatnonzero(cat_counts[j])
        if seen.size < 2:
            problems.append(f"item {iid!r}: every response is {seen[0]}; its parameters cannot be estimated (drop it "
                            "or give it fixed parameters)")
        elif fam != Family.DICHOTOMOUS and seen.size < n_cat[j]:
            gap = sorted(set(range(n_cat[j])) - set(seen.tolist()))
            problems.append(f"item {iid!r}: categories {gap} are never observed; recode the item's categories to "
                            f"0..{seen.size - 1}")
    if problems:
        raise CalibrationError("the data cannot be calibrated as given:\n  " + "\n  ".join(problems))
    family = np.array([model_spec(m).family for m in models])
    phi0 = _start_values(values, models, n_cat, priors_d, cat_counts)
    free, tied = _free_mask(models, n_cat, phi0.shape[1])
    is_fixed = np.array([i in fixed_items for i in ids])
    if is_fixed.any():
        fixed_bank = ItemBank(items=[fixed_items[i] for i in np.array(ids)[is_fixed]], scaling=fixed.scaling)
        arr = fixed_bank.compile()
        fam_f = family[is_fixed]
        phi_f = from_irt(fam_f, n_cat[is_fixed], arr.a, arr.thresholds, arr.c, arr.d, phi0.shape[1])
        phi0[is_fixed] = phi_f
        free[is_fixed] = False
        tied[is_fixed] = False
    if tied.sum() == 1:  # one 1PL item: its slope is simply free
        free[tied, 0] = True
        tied[:] = False
    # groups
    if groups is None:
        gidx = np.zeros(values.shape[0], dtype=int)
        labels = ("all",)
    else:
        garr = np.asarray(groups)
        if garr.shape != (values.shape[0],):
            raise CalibrationError(f"groups has shape {garr.shape}; give one label per response row "
                                   f"({values.shape[0]})")
        labels_sorted = sorted(set(garr.tolist()), key=str)
        if reference_group is not None:
            if reference_group not in labels_sorted:
                raise CalibrationError(f"reference_group {reference_group!r} is not among the group labels "
                                       f"{labels_sorted[:10]}")
            labels_sorted.remove(reference_group)
            labels_sorted.insert(0, reference_group)
        labels = tuple(labels_sorted)
        lookup = {g: k for k, g in enumerate(labels)}
        gidx = np.array([lookup[g] for g in garr.tolist()])
    n_groups = len(labels)
    latent = np.tile([0.0, 1.0], (n_groups, 1))
    latent_free = np.zeros((n_groups, 2), dtype=bool)
    slopes_free = bool(free[:, 0].any() or tied.any())
    if estimate_latent is None:
        if is_fixed.any():
            latent_free[:] = True
        elif n_groups > 1:
            latent_free[1:] = True
        if not slopes_free and not is_fixed.any():
            latent_free[0, 1] = True  # Rasch family: the scale comes from the latent SD
    elif estimate_latent:
        latent_free[1:] = True
        if is_fixed.any():
            latent_free[0] = True
    problem = Problem(values, family, n_cat, phi0, free, tied, theta, gidx, latent, latent_free, priors_d,
                      expand=accelerate != "none")
    settings = EMSettings(tol=tol, max_iter=max_iter, accelerate=accelerate)
    state = run_em(problem, settings, progress=progress)
    names = problem.params.names(ids)
    if state.diverged:
        what = names[state.where_change] if 0 <= state.where_change < len(names) else "a slope"
        warnings.warn(ConvergenceWarning(
            f"EM stopped after {state.n_iter} cycles: {what} ran past "
            f"{settings.slope_limit if what.endswith(' a') else settings.intercept_limit:g}, towards infinity -- "
            f"the data ({values.shape[0]} persons) cannot pin that item down (an item that splits the sample "
            "perfectly, one nearly everyone gets right or wrong, or too few persons for the model); use more data, "
            "a simpler model (2pl, rasch), priors (priors='bilog' puts a lognormal prior on a) or drop the item"),
            stacklevel=2)
    elif not state.converged:
        what = names[state.where_change] if 0 <= state.where_change < len(names) else "a parameter"
        hint = ("a prior on c (priors='3pl') or a simpler model (2pl)" if any(m in ("3pl", "4pl") for m in models)
                else "a larger max_iter")
        warnings.warn(ConvergenceWarning(
            f"EM did not converge in {state.n_iter} cycles: the last step still moved {what} by "
            f"{state.max_change:.2g} (tol {tol:g}) and changed the log-likelihood by {state.loglik_gain:.3g}; "
            f"try {hint}"), stacklevel=2)
    return CalibrationResult.build(
        problem=problem, state=state, ids=ids, person_ids=person_ids, models=tuple(models), fixed_items=fixed_items,
        group_labels=labels, priors=priors_d, settings=settings, elapsed=time.perf_counter() - started, name=name,
    )
