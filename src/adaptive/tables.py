"""Frozen, column-wise result tables (item fit, person fit, DIF, standard errors): arrays, not lists of dicts.

A table is a frozen dataclass whose fields are columns of equal length (numpy arrays, or tuples for ids
and labels), with one key column (item or person ids). It exports rows as plain records
(:meth:`Table.to_records`), CSV (:meth:`Table.to_csv`) or a pandas DataFrame (:meth:`Table.to_frame`, when
pandas is installed); ``table.row(key)`` gives one row; iterating gives the rows as records.

Examples
--------
>>> import numpy as np
>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Demo(Table):
...     key = "item_id"
...     item_id: tuple
...     value: np.ndarray
>>> t = Demo(("Q1", "Q2"), np.array([0.5, np.nan]))
>>> t.row("Q2")
{'item_id': 'Q2', 'value': None}
>>> print(t.to_csv(), end="")
item_id,value
Q1,0.5
Q2,
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .exceptions import AdaptiveError

__all__ = ["Table"]


def _plain(v: Any) -> Any:
    """A numpy scalar as a Python value; NaN as None (a missing value, not a number)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


class Table:
    """Base of column-wise result tables (a frozen dataclass with array columns)."""

    #: the name of the id column
    key: ClassVar[str] = "item_id"
    #: the column fields, when not every 1-D field of the table's length is one
    column_names: ClassVar[tuple[str, ...] | None] = None

    def columns(self) -> dict[str, Any]:
        """The columns by name, in field order (non-column fields, e.g. settings, left out)."""
        if self.column_names is not None:
            return {name: getattr(self, name) for name in self.column_names}
        n = len(self)
        out = {}
        for f in fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if isinstance(v, (np.ndarray, tuple, list)) and np.ndim(v) == 1 and len(v) == n:
                out[f.name] = v
        return out

    def __len__(self) -> int:
        return len(getattr(self, self.key))

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per row, with Python values (NaN as None)."""
        cols = self.columns()
        return [{k: _plain(v[i]) for k, v in cols.items()} for i in range(len(self))]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.to_records())

    def row(self, key: Any) -> dict[str, Any]:
        """The row whose key column equals ``key``."""
        keys = list(getattr(self, self.key))
        if key not in keys:
            raise KeyError(f"{key!r} is not in this table's {self.key} column")
        i = keys.index(key)
        return {k: _plain(v[i]) for k, v in self.columns().items()}

    def to_csv(self, path: str | Path | None = None) -> str:
        """The table as CSV text (written to ``path`` when given); missing values are empty cells."""
        records = self.to_records()
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(self.columns()), lineterminator="\n")
        writer.writeheader()
        for r in records:
            writer.writerow({k: ("" if v is None else repr(v) if isinstance(v, float) else v) for k, v in r.items()})
        text = buf.getvalue()
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def to_frame(self):
        """The table as a pandas DataFrame (pandas is optional: ``pip install pandas``)."""
        try:
            import pandas as pd
        except ImportError:
            raise AdaptiveError("to_frame() needs pandas, which adaptive does not install; pip install pandas, or "
                                "use to_records() / to_csv()") from None
        return pd.DataFrame({k: list(v) if isinstance(v, tuple) else v for k, v in self.columns().items()})
