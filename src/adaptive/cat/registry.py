"""Registries of rules by name, so that a design in JSON or TOML can name any registered rule.

A rule class registers itself with a decorator::

    from adaptive.cat.registry import SELECTION_RULES
    from adaptive.cat.selection import SelectionRule

    @SELECTION_RULES.register("my_rule")
    class MyRule(SelectionRule):
        def criterion(self, ctx, state, rows):
            ...

and ``ExamDesign(selection={"rule": "my_rule"})`` is then valid: design fields are checked
against the registry when the design is validated, with a "did you mean" for a near miss.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

__all__ = ["Registry", "SELECTION_RULES", "START_RULES", "TIMEOUT_RULES"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Named rule classes of one kind (selection, start, run-out-of-time, ...)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._rules: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator: register the class under ``name`` (and set its ``name`` attribute)."""
        if not name.isidentifier():
            raise ValueError(f"a {self.kind} name must be an identifier, got {name!r}")

        def deco(cls: T) -> T:
            cls.name = name  # type: ignore[attr-defined]
            self._rules[name] = cls
            return cls

        return deco

    def __getitem__(self, name: str) -> T:
        return self._rules[self.check(name)]

    def __contains__(self, name: object) -> bool:
        return name in self._rules

    def __iter__(self) -> Iterator[str]:
        return iter(self._rules)

    def __len__(self) -> int:
        return len(self._rules)

    def names(self) -> tuple[str, ...]:
        return tuple(self._rules)

    def check(self, name: str) -> str:
        """``name`` if registered, else a ``ValueError`` listing the names (and the nearest one)."""
        if name in self._rules:
            return name
        near = difflib.get_close_matches(str(name), self._rules, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ValueError(f"unknown {self.kind} {name!r}{hint} (registered: {', '.join(sorted(self._rules))})")


#: item-selection rules (:mod:`adaptive.cat.selection`)
SELECTION_RULES: Registry = Registry("selection rule")
#: start rules (:mod:`adaptive.cat.start`)
START_RULES: Registry = Registry("start rule")
#: what happens to a test that runs out of time (:mod:`adaptive.cat.stopping`)
TIMEOUT_RULES: Registry = Registry("run-out-of-time rule")
