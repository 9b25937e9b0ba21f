"""Banks the engine tests share."""

from __future__ import annotations

import json

from adaptive import ItemBank
from adaptive.synthetic import synthetic_bank


def cmcs_bank(n: int = 300, seed: int = 11, **kw) -> ItemBank:
    """A synthetic 3PL bank with the CMCS blueprint."""
    return synthetic_bank(n, model="3pl", rng=seed, **kw)


def with_pretest(n_pre: int = 20) -> ItemBank:
    """A 200-item bank whose first ``n_pre`` items are pretest items."""
    data = json.loads(cmcs_bank(200, seed=9).to_json())
    for it in data["items"][:n_pre]:
        it["status"] = "pretest"
    return ItemBank(**data)
