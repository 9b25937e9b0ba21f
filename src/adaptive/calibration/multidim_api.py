"""``calibrate(..., factors=...)`` and ``calibrate(..., model="nominal")``: the entry to :mod:`.multidim`."""

from __future__ import annotations

import time
import warnings

import numpy as np

from ..exceptions import CalibrationError, ConvergenceWarning
from ..irt.linear import KIND_OF_MODEL
from ..irt.registry import canonical_model
from .em import EMSettings, run_em
from .multidim import MAX_PRODUCT_DIMS, LinearProblem, default_points, free_mask, product_grid, start_values
from .multidim_fixed import fixed_items, fixed_pattern, fixed_rows, group_codes, models_with_fixed
from .multidim_result import MultidimResult

__all__ = ["fit_multidim", "fit_bifactor", "factor_pattern", "MAX_FACTORS", "QMC_POINTS"]

#: the most factors calibrate() estimates (product grids up to 5, quasi-Monte Carlo EM up to this)
MAX_FACTORS = 10
#: the most general factors of a two-tier model (each specific factor is integrated on a (G + 1)-dimensional grid)
MAX_GENERAL = 3
#: quasi-Monte Carlo points (a power of two, as Sobol sequences need; mirt's QMCEM uses 5000)
QMC_POINTS = 4096


def factor_pattern(factors, ids, exempt=()):
    """``(pattern (I, K) bool, factor names, exploratory)`` from ``factors``: an int K (exploratory) or
    ``{factor name: [item ids]}`` (confirmatory). Items in ``exempt`` (fixed items, whose loadings come with
    their parameters) may be left out of every factor."""
    if isinstance(factors, (bool, np.bool_)):
        raise CalibrationError(f"factors={factors!r}: give a number of factors or {{name: [item ids]}}")
    if isinstance(factors, (int, np.integer)):
        k = int(factors)
        if not 1 <= k <= MAX_FACTORS:
            raise CalibrationError(f"factors={k}: use 1 to {MAX_FACTORS} factors")
        if len(ids) < 2 * k + 1:
            raise CalibrationError(f"factors={k} needs at least {2 * k + 1} items; the data have {len(ids)}")
        pattern = np.ones((len(ids), k), dtype=bool)
        for j in range(k - 1):  # mirt's exploratory identification: item j loads on factors 1..j+1 only
            pattern[j, j + 1:] = False
        return pattern, tuple(f"F{q + 1}" for q in range(k)), k > 1
    if not isinstance(factors, dict) or not factors:
        raise CalibrationError("factors: give a number of factors (exploratory) or {factor name: [item ids]} "
                               "(confirmatory)")
    names = tuple(str(f) for f in factors)
    if len(names) > MAX_FACTORS:
        raise CalibrationError(f"{len(names)} factors: at most {MAX_FACTORS} are estimated (quasi-Monte Carlo EM "
                               "beyond 3)")
    lookup = {i: j for j, i in enumerate(ids)}
    pattern = np.zeros((len(ids), len(names)), dtype=bool)
    for q, (name, members) in enumerate(factors.items()):
        members = [members] if isinstance(members, str) else list(members)
        unknown = [m for m in members if str(m) not in lookup]
        if unknown:
            raise CalibrationError(f"factor {name!r}: items {unknown[:5]} are not columns of the data")
        if not members:
            raise CalibrationError(f"factor {name!r} has no items")
        pattern[[lookup[str(m)] for m in members], q] = True
    lost = [ids[j] for j in np.flatnonzero(~pattern.any(axis=1)) if ids[j] not in set(exempt)]
    if lost:
        raise CalibrationError(f"items {lost[:5]} load on no factor; name them under a factor or drop the columns")
    return pattern, names, False


def _check_items(values, ids, model, fixed_cats=None):
    """Canonical model names and category counts; a CalibrationError lists every item the data cannot fit.
    ``fixed_cats``: ``{item id: categories}`` of fixed items (their categories need not all be observed)."""
    fixed_cats = fixed_cats or {}
    names = [model] * len(ids) if isinstance(model, str) else list(model)
    if len(names) != len(ids):
        raise CalibrationError(f"model lists {len(names)} names for {len(ids)} items")
    models = []
    for iid, m in zip(ids, names):
        try:
            c = "nominal" if str(m).strip().lower() in ("nominal", "nrm") else canonical_model(m)
        except ValueError as err:
            raise CalibrationError(f"item {iid!r}: {err}") from None
        if c not in KIND_OF_MODEL:
            raise CalibrationError(f"item {iid!r}: model {c!r} has no multidimensional form; with factors= use "
                                   f"{', '.join(KIND_OF_MODEL)}")
        models.append(c)
    observed_max = np.nanmax(np.where(np.isnan(values), -1, values), axis=0).astype(int)
    n_cat = np.maximum(observed_max + 1, 2)
    problems = []
    for j, (iid, m) in enumerate(zip(ids, models)):
        if iid in fixed_cats:
            if observed_max[j] >= fixed_cats[iid]:
                problems.append(f"item {iid!r}: response {observed_max[j]} but the fixed item has categories "
                                f"0..{fixed_cats[iid] - 1}")
            n_cat[j] = fixed_cats[iid]
            continue
        seen = np.unique(values[~np.isnan(values[:, j]), j])
        if m in ("2pl", "3pl") and observed_max[j] > 1:
            problems.append(f"item {iid!r}: response {observed_max[j]} but {m} items are 0/1 (use 'graded' or "
                            "'gpcm')")
        elif seen.size < 2:
            problems.append(f"item {iid!r}: {'no responses' if seen.size == 0 else f'every response is {seen[0]:g}'}"
                            "; its parameters cannot be estimated (drop the column)")
        elif seen.size < n_cat[j]:
            problems.append(f"item {iid!r}: categories {sorted(set(range(n_cat[j])) - set(seen.astype(int)))} are "
                            f"never observed; recode the item's categories to 0..{seen.size - 1}")
    if problems:
        raise CalibrationError("the data cannot be calibrated as given:\n  " + "\n  ".join(problems))
    return models, n_cat


def _check_c_prior(models, priors):
    if "3pl" in models and "c" not in priors:
        raise CalibrationError("multidimensional 3pl items need a prior on the lower asymptote c: give priors='3pl' "
                               "(Beta(6, 16)) or priors={'c': 'beta(a, b)'}; without one c drifts to 0 or to the "
                               "item's proportion correct")


def _warn_unconverged(state, tol):
    if not state.converged:
        warnings.warn(ConvergenceWarning(
            f"EM stopped after {state.n_iter} cycles without converging (last change {state.max_change:.2g}, tol "
            f"{tol:g}){'; a slope or intercept ran towards infinity' if state.diverged else ''}"), stacklevel=4)


def fit_multidim(values, ids, person_ids, model, factors, *, quadrature=None, bounds=(-6.0, 6.0), tol=1e-4,
                 max_iter=2000, accelerate="squarem", progress=None, correlated=True,
                 integration="auto", priors=None, fixed=None, groups=None,
                 reference_group=None) -> MultidimResult:
    """Fit the model (see :mod:`adaptive.calibration.multidim`) and return a :class:`MultidimResult`. ``fixed``:
    a :class:`~adaptive.bank.multidim.MultidimBank` whose items in the data keep its parameters (fixed-item
    calibration, see :mod:`.multidim_fixed`); ``groups``: a multiple-group calibration."""
    started = time.perf_counter()
    anchors = fixed_items(fixed, ids)
    if anchors and (not isinstance(factors, dict)):
        raise CalibrationError("fixed items with factors= need a confirmatory model {factor: [item ids]} whose "
                               "factors are the fixed bank's; an exploratory fit has no fixed scale to keep")
    model = models_with_fixed(model, ids, anchors)
    models, n_cat = _check_items(values, ids, model, {i: int(b.n_cat[j]) for i, (b, j) in anchors.items()})
    priors = dict(priors or {})
    _check_c_prior(models, priors)
    pattern, factor_names, exploratory = factor_pattern(1 if factors is None else factors, ids, exempt=anchors)
    n_dims = len(factor_names)
    if any(m == "nominal" for m in models) and n_dims > 1:
        raise CalibrationError("the nominal model is unidimensional here: fit it with factors=1 (or no factors)")
    if integration not in ("auto", "grid", "qmc"):
        raise CalibrationError(f"integration={integration!r}: choose 'auto' (a product grid up to 3 factors, "
                               "quasi-Monte Carlo beyond), 'grid' or 'qmc'")
    use_qmc = integration == "qmc" or (integration == "auto" and n_dims > 3)
    if not use_qmc and n_dims > MAX_PRODUCT_DIMS:
        raise CalibrationError(f"{n_dims} factors: a product grid holds at most {MAX_PRODUCT_DIMS}; use "
                               "integration='qmc' (the default beyond 3)")
    mean_free = None
    if anchors:
        pattern = fixed_pattern(pattern, ids, anchors, factor_names)
    phi0, kinds = start_values(values, models, n_cat, pattern, exploratory)
    free = free_mask(kinds, n_cat, pattern)
    corr_free = np.triu(np.ones((n_dims, n_dims), dtype=bool), 1) & bool(correlated and not exploratory)
    if anchors:
        phi0, free, mean_free = fixed_rows(phi0, free, pattern, ids, anchors, factor_names, kinds)
        corr_free |= np.diag(mean_free)  # a factor the fixed items load on: its mean and variance estimated
    codes, labels = group_codes(groups, values.shape[0], reference_group)
    if len(labels) > 1:
        if use_qmc or exploratory:
            raise CalibrationError("groups with factors= need a confirmatory model on a product grid (up to 5 "
                                   "factors, integration='grid')")
        n_g = len(labels)
        # the reference group as above; every other group's means, variances and correlations are free
        other = np.triu(np.ones((n_dims, n_dims), dtype=bool)) if correlated else np.eye(n_dims, dtype=bool)
        corr_free = np.stack([corr_free] + [other] * (n_g - 1))
        base = np.zeros(n_dims, dtype=bool) if mean_free is None else mean_free
        mean_free = np.stack([base] + [np.ones(n_dims, dtype=bool)] * (n_g - 1))
    problem: LinearProblem
    if use_qmc:
        from .qmc import QMCProblem

        points = QMC_POINTS if quadrature is None else int(quadrature)
        if not 100 <= points <= 100_000:
            raise CalibrationError(f"quadrature={points}: quasi-Monte Carlo EM takes 100 to 100,000 points "
                                   f"(default {QMC_POINTS})")
        problem = QMCProblem(values, kinds, n_cat, phi0, free, points, n_dims, np.eye(n_dims), corr_free,
                             priors=priors, mean_free=mean_free)
        described = (f"quasi-Monte Carlo EM on {problem.z.shape[0]} scrambled Sobol points (seed 1) mapped to "
                     "N(0, Σ)")
    else:
        points = default_points(n_dims) if quadrature is None else int(quadrature)
        if not 3 <= points <= 201 or points ** n_dims > 200_000:
            raise CalibrationError(f"quadrature={points} points per dimension gives {points ** n_dims} nodes in "
                                   f"{n_dims} dimensions; use 3 to 201 points and at most 200,000 nodes "
                                   f"(mirt's defaults: {default_points(n_dims)} per dimension)")
        nodes = product_grid(n_dims, points, bounds)
        problem = LinearProblem(values, kinds, n_cat, phi0, free, nodes, np.eye(n_dims), corr_free, priors=priors,
                                mean_free=mean_free, groups=codes, n_groups=len(labels))
        described = (f"EM on a product grid {' x '.join([str(points)] * n_dims)} = {nodes.shape[0]} nodes on "
                     f"[{bounds[0]:g}, {bounds[1]:g}]")
    settings = EMSettings(tol=tol, max_iter=max_iter, accelerate=accelerate)
    # exploratory: PX-EM (LinearProblem._expand_and_reduce). Its fixed point is where the posterior moments are
    # (0, I); on a coarse grid that differs slightly from the grid maximum (3 factors, 15 points: 0.7 log-likelihood
    # units lower, loadings equal to 1e-4), which plain EM reaches only after hundreds of cycles along the
    # rotational ridge
    problem.expanded = exploratory and n_dims > 1
    state = run_em(problem, settings, progress=progress)
    _warn_unconverged(state, tol)
    phi, sigma = problem.params.unpack(state.x)
    if anchors:
        described += f"; {len(anchors)} fixed items set the scale (latent means and variances estimated)"
    group_latent = None
    if len(labels) > 1:
        sigmas, means = problem.params.latents(state.x)
        group_latent = {lab: {"mean": means[q], "cov": sigmas[q], "n": int((codes == q).sum())}
                        for q, lab in enumerate(labels)}
        described += (f"; {len(labels)} groups, reference {labels[0]!r} N(0, R), the others' means, variances and "
                      "correlations estimated")
    return MultidimResult(
        item_ids=tuple(ids), person_ids=tuple(person_ids), factor_names=factor_names, models=tuple(models),
        kind=kinds, n_cat=n_cat, phi=phi, latent_cov=sigma, loglik=float(state.loglik), n_iter=state.n_iter,
        converged=state.converged, exploratory=exploratory,
        integration=described, elapsed=time.perf_counter() - started, problem=problem, x=state.x,
        latent_mean=problem.params.mean_of(state.x), groups=group_latent,
        person_groups=None if len(labels) < 2 else np.array(labels, dtype=object)[codes])


def fit_bifactor(values, ids, person_ids, model, specific, *, quadrature=None, bounds=(-6.0, 6.0), tol=1e-4,
                 max_iter=2000, accelerate="squarem", progress=None, priors=None, general=None,
                 correlated=True) -> MultidimResult:
    """A bifactor model (general factor ``G`` plus the specific factors named in ``specific``, one label per item,
    None or "" for items on the general factors only) or, with ``general={name: [item ids]}``, a two-tier model
    with those correlated general factors, by EM with dimension reduction (:mod:`.bifactor`)."""
    from .bifactor import BifactorProblem

    started = time.perf_counter()
    labels = list(specific)
    if len(labels) != len(ids):
        raise CalibrationError(f"bifactor lists {len(labels)} labels for {len(ids)} items; give one per item (None "
                               "for an item on the general factor only)")
    names = [str(v) for v in dict.fromkeys(v for v in labels if v not in (None, ""))]
    if not names:
        raise CalibrationError("bifactor: no item names a specific factor")
    if general is None:
        g_pattern, g_names = np.ones((len(ids), 1), dtype=bool), ("G",)
    else:
        g_pattern, g_names, _ = factor_pattern(general, ids)
        if len(g_names) > MAX_GENERAL:
            raise CalibrationError(f"two-tier: {len(g_names)} general factors; at most {MAX_GENERAL} are integrated "
                                   "on a product grid with each specific factor")
    clash = sorted(set(g_names) & set(names))
    if clash:
        raise CalibrationError(f"bifactor: {clash[:5]} name{'s' if len(clash) == 1 else ''} a general factor; call "
                               "the specific factors otherwise")
    spec = np.array([names.index(str(v)) if v not in (None, "") else -1 for v in labels])
    lonely = [n for q, n in enumerate(names) if (spec == q).sum() < 2]
    if lonely:
        raise CalibrationError(f"bifactor: specific factors {lonely[:5]} have fewer than 2 items; a specific factor "
                               "needs at least 2 (better 3 or more)")
    models, n_cat = _check_items(values, ids, model)
    priors = dict(priors or {})
    _check_c_prior(models, priors)
    if any(m == "nominal" for m in models):
        raise CalibrationError("the nominal model is unidimensional: it cannot load on a bifactor structure")
    n_general = len(g_names)
    default = 21 if n_general == 1 else 11 if n_general == 2 else 7
    points = default if quadrature is None else int(quadrature)
    if not 3 <= points <= 101 or points ** (n_general + 1) > 200_000:
        raise CalibrationError(f"quadrature={points}: use 3 to 101 points per dimension and at most 200,000 nodes in "
                               f"the {n_general + 1} dimensions of a general-and-specific grid ({default} is the "
                               "default)")
    pattern = np.column_stack([g_pattern, spec >= 0])
    phi0, kinds = start_values(values, models, n_cat, pattern, False)
    problem = BifactorProblem(values, kinds, n_cat, phi0, free_mask(kinds, n_cat, pattern), spec, len(names), points,
                              bounds, priors=priors, n_general=n_general, correlated=correlated)
    state = run_em(problem, EMSettings(tol=tol, max_iter=max_iter, accelerate=accelerate), progress=progress)
    _warn_unconverged(state, tol)
    phi2, _ = problem.params.unpack(state.x)
    kind_name = "bifactor" if general is None else (
        f"two-tier ({n_general} general factor{'s' if n_general > 1 else ''})")
    return MultidimResult(
        item_ids=tuple(ids), person_ids=tuple(person_ids), factor_names=(*g_names, *names), models=tuple(models),
        kind=kinds, n_cat=n_cat, phi=problem.full_phi(phi2), latent_cov=problem.full_cov(state.x),
        loglik=float(state.loglik), n_iter=state.n_iter, converged=state.converged, exploratory=False,
        integration=(f"{kind_name} EM with dimension reduction: {len(names)} {n_general + 1}-dimensional grids of "
                     f"{' x '.join([str(points)] * (n_general + 1))} nodes on [{bounds[0]:g}, {bounds[1]:g}]"),
        elapsed=time.perf_counter() - started, problem=problem, x=state.x)
