"""A bank's subscore model: the exam's items calibrated with each content domain as a factor.

An :class:`~adaptive.bank.schema.ItemBank` may carry, in its field ``subscores``, a multidimensional calibration
of its own items in which every factor is one of its content domains (a correlated-factors model, e.g. from
``adaptive.calibrate(X, factors={domain: [item ids]})`` on the exam's response data). The candidate's report then
gives each domain's subscore: the domain's θ estimated from all of the candidate's scored answers at once (a
domain borrows strength from the others through the latent correlations), with its SE and reliability. The
unidimensional item parameters still drive selection, scoring and the pass/fail decision.

JSON form (the :class:`~adaptive.bank.multidim.MultidimBank` document)::

    "subscores": {"factors": ["Coding", "Billing"], "latent_cov": [[1, 0.6], [0.6, 1]],
                  "items": [{"item_id": "Q1", "model": "2pl", "a1": 1.3, "a2": 0, "d": 0.4}, ...]}

Every factor must be a content domain of the bank, and every operational item of the bank must be in
``items`` (pretest and retired items may be left out: they are never scored).

Examples
--------
>>> fit = adaptive.calibrate(X, model="2pl", factors={"Coding": ids[:20], "Billing": ids[20:]})  # doctest: +SKIP
>>> bank = bank.with_subscores(fit.bank)                                                          # doctest: +SKIP
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..exceptions import BankValidationError
from .multidim import MultidimBank

__all__ = ["SubscoreModel"]


class SubscoreModel(BaseModel):
    """Items in mirt's columns on factors named after the bank's content domains (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    factors: list[str] = Field(min_length=1, max_length=10,  # calibrate() estimates up to 10 factors
                               description="one factor per content domain, named as the domain")
    latent_cov: list[list[float]] | None = Field(None, description="latent covariance (default: identity)")
    latent_mean: list[float] | None = None
    items: list[dict[str, Any]] = Field(min_length=1, description="item_id, model, a1..aK, d (or d1..) per item")
    method: Literal["eap", "map"] = Field("eap", description="how subscores are estimated")

    @model_validator(mode="after")
    def _build(self) -> SubscoreModel:
        try:
            self.bank  # noqa: B018 -- builds (and so validates) the multidimensional bank
        except BankValidationError as err:
            raise ValueError("; ".join(err.problems) if hasattr(err, "problems") else str(err)) from None
        return self

    @cached_property
    def bank(self) -> MultidimBank:
        """The items as a :class:`~adaptive.bank.multidim.MultidimBank`."""
        return MultidimBank.from_rows(self.items, self.factors, self.latent_cov, self.latent_mean,
                                      source="items")

    @classmethod
    def from_bank(cls, bank: MultidimBank, method: Literal["eap", "map"] = "eap") -> SubscoreModel:
        """From a multidimensional bank (e.g. ``fit.bank`` of a confirmatory calibration by domain)."""
        rows = [{key: (float(v) if isinstance(v, (float, np.floating)) else v) for key, v in r.items()}
                for r in bank.rows()]
        return cls(factors=list(bank.factor_names), latent_cov=bank.latent_cov.tolist(),
                   latent_mean=bank.latent_mean.tolist(), items=rows, method=method)


def subscore_problems(subscores: SubscoreModel | None, items) -> list[str]:
    """What ties a subscore model to its bank: factors that are domains, every operational item present."""
    if subscores is None:
        return []
    domains = {it.domain for it in items if it.domain}
    problems = [f"subscores, factor {f!r}: not a content domain of the bank ({sorted(domains)}); name each factor "
                "after the domain it scores" for f in subscores.factors if f not in domains]
    known = set(subscores.bank.item_ids)
    missing = [it.id for it in items if it.status == "operational" and it.id not in known]
    if missing:
        problems.append(f"subscores: operational items {missing[:5]}{' ...' if len(missing) > 5 else ''} "
                        f"({len(missing)} in all) have no subscore parameters; calibrate them with the others")
    n_cat = dict(zip(subscores.bank.item_ids, subscores.bank.n_cat.tolist()))
    clash = [f"{it.id!r} ({it.n_cat} vs {n_cat[it.id]})" for it in items if it.id in n_cat and it.n_cat != n_cat[it.id]]
    if clash:
        problems.append(f"subscores: items {', '.join(clash[:5])} have another number of score categories in the "
                        "subscore model than in the bank")
    ids = {it.id for it in items}
    extra = [i for i in subscores.bank.item_ids if i not in ids]
    if extra:
        problems.append(f"subscores: items {extra[:5]} are not in the bank; drop them from the subscore model")
    return problems
