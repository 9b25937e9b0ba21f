"""Reading response files: wide CSV (one column per item) or long CSV (person, item, response).

An empty cell (or ``NA``, ``.``) means "not administered". A first column
whose header is not an item id of the bank holds person ids.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .exceptions import ResponseValidationError
from .textfiles import read_text

__all__ = ["ResponseTable", "read_responses"]

_MISSING = {"", "na", "nan", ".", "null"}


@dataclass(frozen=True)
class ResponseTable:
    """Responses read from a file.

    Attributes
    ----------
    person_ids : tuple of str, length ``N``
    item_ids : tuple of str, length ``J`` -- the file's item columns, in file order
    values : ndarray ``(N, J)`` -- categories as floats, NaN = not administered
    """

    person_ids: tuple[str, ...]
    item_ids: tuple[str, ...]
    values: np.ndarray

    def for_bank(self, bank) -> np.ndarray:
        """The ``(N, I)`` matrix in the bank's item order (NaN for bank items the file lacks)."""
        index = bank.index
        unknown = [i for i in self.item_ids if i not in index]
        if unknown:
            raise ResponseValidationError(
                f"{len(unknown)} item column(s) are not in bank {bank.name!r}: {unknown[:10]}; "
                "check the header or the bank"
            )
        out = np.full((len(self.person_ids), len(bank)), np.nan)
        out[:, [index[i] for i in self.item_ids]] = self.values
        return out


def _cell(text: str, where: str) -> float:
    t = text.strip()
    if t.lower() in _MISSING:
        return np.nan
    try:
        return float(t)
    except ValueError:
        raise ResponseValidationError(f"{where}: {text!r} is not a response (a category number, or empty for "
                                      "not administered)") from None


def read_responses(path: str | Path, bank=None, *, layout: str = "auto") -> ResponseTable:
    """Read a response file.

    Parameters
    ----------
    path : CSV file
    bank : ItemBank, optional -- tells item columns from a person-id column in wide files
    layout : {"auto", "wide", "long"} -- "long" needs columns person, item, response;
        "auto" picks long when the header is exactly those three names.
    """
    path = Path(path)
    text = read_text(path, "response file", ResponseValidationError)
    rows = [r for r in csv.reader(io.StringIO(text, newline="")) if any(c.strip() for c in r)]
    if not rows:
        raise ResponseValidationError(f"{path}: the file is empty")
    header = [h.strip() for h in rows[0]]
    lower = [h.lower() for h in header]
    if layout == "long" or (layout == "auto" and sorted(lower) == ["item", "person", "response"]):
        try:
            p, i, r = lower.index("person"), lower.index("item"), lower.index("response")
        except ValueError:
            raise ResponseValidationError(f"{path}: a long file needs the columns person, item, response") from None
        persons: dict[str, int] = {}
        items: dict[str, int] = {}
        cells = []
        for n, row in enumerate(rows[1:], start=2):
            if len(row) < 3:
                raise ResponseValidationError(f"{path}, row {n}: expected 3 cells, got {len(row)}")
            pid, iid = row[p].strip(), row[i].strip()
            val = _cell(row[r], f"{path}, row {n}, column 'response'")
            key = (persons.setdefault(pid, len(persons)), items.setdefault(iid, len(items)))
            cells.append((key, val, n))
        values = np.full((len(persons), len(items)), np.nan)
        seen = set()
        for key, val, n in cells:
            if key in seen:
                raise ResponseValidationError(f"{path}, row {n}: a second response of the same person to the same item")
            seen.add(key)
            values[key] = val
        return ResponseTable(tuple(persons), tuple(items), values)
    first_is_person = (bank is not None and header[0] not in bank.index) or lower[0] in ("person", "id", "candidate",
                                                                                         "examinee", "")
    item_cols = header[1:] if first_is_person else header
    values = np.full((len(rows) - 1, len(item_cols)), np.nan)
    person_ids = []
    off = 1 if first_is_person else 0
    for n, row in enumerate(rows[1:], start=2):
        if len(row) > len(header):
            raise ResponseValidationError(f"{path}, row {n}: {len(row)} cells but the header has {len(header)}")
        person_ids.append(row[0].strip() if first_is_person else str(n - 1))
        for j, text in enumerate(row[off:]):
            values[n - 2, j] = _cell(text, f"{path}, row {n}, column {item_cols[j]!r}")
    return ResponseTable(tuple(person_ids), tuple(item_cols), values)
