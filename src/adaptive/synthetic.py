"""Seeded synthetic item banks and response data, for demos, studies and tests.

Parameter distributions follow what operational certification banks
calibrated with the 3PL typically show: log-slopes normal around
log(1.1) with SD 0.3 (slopes mostly 0.6-2.0), difficulties normal (mean
slightly below 0 for a certification population), lower asymptotes
Beta(5, 17) (mean about 0.23, plausible for four-option items).
"""

from __future__ import annotations

import numpy as np

from ._random import as_generator
from .bank import ItemBank, Provenance
from .irt.registry import model_spec

__all__ = ["CMCS_DOMAINS", "allocate", "synthetic_bank", "simulate_responses"]

#: CMCS content domains with the target blueprint proportions used by the demo bank.
CMCS_DOMAINS: dict[str, float] = {
    "ICD-10-CM": 0.30,
    "CPT": 0.25,
    "HCPCS Level II": 0.10,
    "Modifiers": 0.10,
    "Documentation": 0.15,
    "Compliance": 0.10,
}

_CODE_SETS = {"ICD-10-CM": "ICD-10-CM", "CPT": "CPT", "HCPCS Level II": "HCPCS Level II", "Modifiers": "CPT"}


def allocate(proportions, total: int) -> np.ndarray:
    """Whole counts summing to ``total`` in the given proportions (largest-remainder method).

    >>> allocate([0.3, 0.25, 0.1, 0.1, 0.15, 0.1], 75).tolist()
    [23, 19, 8, 7, 11, 7]
    """
    props = np.asarray(proportions, dtype=float)
    props = props / props.sum()
    raw = props * total
    counts = np.floor(raw).astype(int)
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[: total - counts.sum()]] += 1
    return counts


def synthetic_bank(
    n_items: int = 300,
    *,
    model: str = "3pl",
    domains: dict[str, float] | None = None,
    b_mean: float = -0.2,
    b_sd: float = 1.0,
    log_a_mean: float = float(np.log(1.1)),
    log_a_sd: float = 0.3,
    code_set_year: int = 2025,
    prefix: str = "CMCS",
    name: str = "synthetic",
    pretest: float = 0.0,
    blueprint=None,
    rng=0,
) -> ItemBank:
    """A bank of ``n_items`` items with realistic parameters and domain tags.

    Parameters
    ----------
    n_items : int
    model : any registered model name (see :mod:`adaptive.irt.registry`); slopes are 1 for Rasch/PCM and
        shared by all items for the 1PL; polytomous items get 3 ordered thresholds (4 categories) 0.6 to 1.4
        logits apart, so data simulated from the bank reach every category and calibrate back
    domains : mapping of domain -> proportion (default :data:`CMCS_DOMAINS`); items are
        allocated to domains by largest remainder, so counts match proportions, and the
        bank declares the same proportions as its blueprint.
    pretest : share of items (per domain, rounded) marked ``status = "pretest"``
    blueprint : a :class:`~adaptive.bank.Blueprint` (e.g. an item pool's, with its sources) to take
        the domains and proportions from instead of ``domains``; the bank declares it as is.
    rng : Generator or int seed

    Examples
    --------
    >>> bank = synthetic_bank(60, rng=1)
    >>> len(bank), bank.items[0].model
    (60, '3pl')
    """
    spec = model_spec(model)
    model = spec.name
    rng = as_generator(rng)
    if blueprint is not None:
        domains = {d.name: d.proportion for d in blueprint.domains}
        if any(p is None for p in domains.values()):
            raise ValueError("synthetic_bank(blueprint=...) needs a proportion for every domain")
    domains = dict(domains or CMCS_DOMAINS)
    names = list(domains)
    counts = allocate(list(domains.values()), n_items)
    tags = np.repeat(np.arange(len(names)), counts)
    a = np.round(np.exp(rng.normal(log_a_mean, log_a_sd, n_items)).clip(0.35, 3.0), 4)
    b = np.round(rng.normal(b_mean, b_sd, n_items).clip(-3.5, 3.5), 4)
    c = np.round(rng.beta(5, 17, n_items), 4)
    if spec.slope == "fixed":
        a = np.ones(n_items)
    elif spec.slope == "common":
        a = np.full(n_items, round(float(np.exp(log_a_mean)), 4))
    d = np.round(1.0 - rng.beta(2, 60, n_items), 4) if spec.upper_asymptote else np.ones(n_items)
    prov = Provenance(method=f"synthetic ({model}); seeded generator adaptive.synthetic.synthetic_bank",
                      software="adaptive")
    # the last round(pretest * n_d) items of each domain are pretest items
    rank = np.arange(n_items) - np.repeat(np.cumsum(counts) - counts, counts)
    is_pretest = rank >= np.repeat(counts - np.round(pretest * counts).astype(int), counts)
    width = max(4, len(str(n_items)))
    items = []
    for k in range(n_items):
        dom = names[tags[k]]
        rec = {"id": f"{prefix}{k + 1:0{width}d}", "model": model, "a": float(a[k]), "domain": dom,
               "status": "pretest" if is_pretest[k] else "operational",
               "code_set": _CODE_SETS.get(dom), "code_set_year": code_set_year if dom in _CODE_SETS else None,
               "provenance": prov}
        if not spec.dichotomous:  # ordered thresholds 0.6 to 1.4 logits apart, centred on b: every category is
            gaps = rng.uniform(0.6, 1.4, 2)  # the most likely one somewhere, so simulated data reach each of them
            steps = np.concatenate([[0.0], np.cumsum(gaps)])
            rec["thresholds"] = [float(x) for x in np.round(b[k] + steps - steps.mean(), 4)]
        else:
            rec["b"] = float(b[k])
            if spec.lower_asymptote:
                rec["c"] = float(c[k])
            if spec.upper_asymptote:
                rec["d"] = float(d[k])
        items.append(rec)
    if blueprint is None:
        total = sum(domains.values())
        blueprint = {"domains": [{"name": d, "proportion": p / total} for d, p in domains.items()]}
    return ItemBank(name=name, items=items, blueprint=blueprint)


def simulate_responses(arrays, theta, rng=0, missing: float = 0.0) -> np.ndarray:
    """Responses of examinees with abilities ``theta`` to every item (NaN where dropped at random).

    Parameters
    ----------
    arrays : ItemArrays (or an ItemBank)
    theta : array_like ``(N,)``
    rng : Generator or int seed
    missing : float -- share of cells set to NaN completely at random

    Returns
    -------
    ndarray ``(N, I)`` of categories as floats.
    """
    arrays = arrays.compile() if hasattr(arrays, "compile") else arrays
    rng = as_generator(rng)
    theta = np.asarray(theta, dtype=float)
    u = rng.random((theta.size, arrays.a.size))
    x = np.empty(u.shape)
    step = max(1, 2_000_000 // max(u.shape[1], 1))  # persons per chunk: the (n, I, K) tables stay ~100 MB
    for lo in range(0, theta.size, step):
        cdf = np.cumsum(arrays.prob(theta[lo:lo + step]), axis=-1)  # (n, I, K)
        x[lo:lo + step] = (u[lo:lo + step, :, None] > cdf[..., :-1]).sum(axis=-1)
    if missing > 0:
        x[rng.random(x.shape) < missing] = np.nan
    return x
