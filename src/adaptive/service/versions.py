"""What the service delivers: a bank version (bank + design + its engine) and the service's typed errors.

A version is deliverable when every item has a stem, its options and (for right/wrong items) its key:
:func:`delivery_problems` lists what is missing, by item and field.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from ..bank import Item, ItemBank, ItemContent
from ..cat.design import ExamDesign
from ..cat.engine import CatEngine
from ..exceptions import AdaptiveError
from ..irt.registry import model_spec

__all__ = ["ServiceError", "NotFound", "Unauthorized", "Forbidden", "Conflict", "Invalid", "TooManyRequests", "Version",
           "delivery_problems", "option_order"]


def _content(item: Item) -> ItemContent:
    """An item's content; deliverable versions are checked to have it (see :func:`delivery_problems`)."""
    if item.content is None:
        raise ValueError(f"item {item.id!r} has no content to deliver")
    return item.content


class ServiceError(AdaptiveError):
    """An error of the delivery service; ``status`` is its HTTP status code."""

    status = 400


class NotFound(ServiceError):
    status = 404


class Unauthorized(ServiceError):
    status = 401


class Forbidden(ServiceError):
    status = 403


class Conflict(ServiceError):
    status = 409


class TooManyRequests(ServiceError):
    """Over a rate limit; ``retry_after`` is the number of seconds to wait."""

    status = 429

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = int(retry_after)


class Invalid(ServiceError):
    status = 422


def delivery_problems(bank: ItemBank) -> list[str]:
    """What keeps ``bank`` from being delivered to candidates: every item needs a stem and its
    options, and a right/wrong (1PL-4PL) item its key; a polytomous item has one option per category."""
    problems = []
    for item in bank.items:
        c = item.content
        if c is None:
            problems.append(f"item {item.id!r}: no content (stem and options) to show a candidate")
            continue
        if len(c.options) < 2:
            problems.append(f"item {item.id!r}: field 'content.options': a candidate needs at least 2 options")
        elif model_spec(item.model).dichotomous and c.key is None:
            problems.append(f"item {item.id!r}: field 'content.key': a right/wrong item needs its key to be scored")
        elif not model_spec(item.model).dichotomous and len(c.options) != item.n_cat:
            problems.append(f"item {item.id!r}: field 'content.options': {len(c.options)} options for "
                            f"{item.n_cat} score categories; give one option per category, lowest first")
    return problems


@dataclass
class Version:
    """One stored bank version with the design it is delivered under."""

    id: int
    name: str
    version: str
    bank: ItemBank
    design: ExamDesign
    engine: CatEngine
    key_index: np.ndarray  # option index of the key (-1: the option index is the score category)

    def score(self, item_id: str, choice: int) -> int:
        k = int(self.key_index[self.bank.index[item_id]])
        return int(choice == k) if k >= 0 else int(choice)

    def option_order(self, seed: int, item_id: str) -> list[int]:
        """The order a session shows an item's options in: ``order[j]`` is the authored option shown at place j.

        Shuffled per candidate when the item allows it (right/wrong items whose content does not say
        ``shuffle: false``; the options of a polytomous item are its ordered score categories).
        """
        item = self.bank.items[self.bank.index[item_id]]
        c = _content(item)
        shuffle = c.shuffle and model_spec(item.model).dichotomous
        return option_order(seed, item_id, len(c.options)) if shuffle else list(range(len(c.options)))

    def item_payload(self, item_id: str, order: list[int] | None = None) -> dict:
        """What a candidate sees of an item: the stem and the options (in the session's order), nothing else."""
        c = _content(self.bank.items[self.bank.index[item_id]])
        order = list(range(len(c.options))) if order is None else order
        return {"item_id": item_id, "stem": c.stem,
                "options": [{"label": chr(ord("A") + j), "text": c.options[k]} for j, k in enumerate(order)]}


def option_order(seed: int, item_id: str, n: int) -> list[int]:
    """A permutation of ``range(n)`` fixed by (seed, item id): SHA-256 ranks, independent of any library's random
    stream, so a replay years later shows the same order."""
    return sorted(range(n), key=lambda k: hashlib.sha256(f"{seed}:{item_id}:{k}".encode()).digest())
