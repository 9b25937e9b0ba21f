"""Item banks: the validated schema, JSON/CSV I/O and compilation to arrays.

An :class:`ItemBank` is the edge object: per-item pydantic records that a
person writes, reads and versions. The numerics never touch it; they use
:meth:`ItemBank.compile`, which returns an :class:`ItemArrays` (struct of
arrays) whose :meth:`ItemArrays.tables` precomputes log-probabilities and
information on a θ grid.

Parameterization (logistic metric; ``scaling`` = D, 1.0 unless the bank
declares e.g. 1.702):

============  ==============================================  ==========================
model         parameters                                      category probabilities
============  ==============================================  ==========================
rasch         b (a fixed at 1)                                dichotomous
1pl           a (common), b                                   dichotomous
2pl           a, b                                            dichotomous
3pl           a, b, c                                         dichotomous
4pl           a, b, c, d                                      dichotomous
graded        a, thresholds b_1 < ... < b_{K-1}               Samejima GRM
gpcm          a, step parameters b_1..b_{K-1}                 Muraki GPCM
pcm           steps (a fixed at 1)                            Masters PCM
============  ==============================================  ==========================

Examples
--------
>>> from adaptive import ItemBank
>>> bank = ItemBank(items=[{"id": "Q1", "model": "2pl", "a": 1.2, "b": -0.3},
...                        {"id": "Q2", "model": "graded", "a": 0.9, "thresholds": [-1.0, 0.5]}])
>>> len(bank), bank.ids
(2, ('Q1', 'Q2'))
>>> bank.compile().n_cat.tolist()
[2, 3]
"""

from ..irt.arrays import GridTables, ItemArrays, cell_edges, theta_grid
from .compile import compile_items
from .constants import DICHOTOMOUS_MODELS, FAMILY_OF_MODEL, MODELS, STATUSES
from .schema import Blueprint, BlueprintDomain, Item, ItemBank, ItemContent, Provenance, canonical_fingerprint

__all__ = [
    "Item",
    "ItemBank",
    "ItemArrays",
    "GridTables",
    "ItemContent",
    "Provenance",
    "Blueprint",
    "BlueprintDomain",
    "MODELS",
    "DICHOTOMOUS_MODELS",
    "FAMILY_OF_MODEL",
    "STATUSES",
    "theta_grid",
    "cell_edges",
    "compile_items",
    "canonical_fingerprint",
]
