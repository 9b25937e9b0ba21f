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


def _delimiter(first_line: str, path: Path) -> str:
    """The file's delimiter: ``,``, or ``;`` / tab when the header has those and no comma (as spreadsheets in
    many locales write CSV); anything else is refused rather than read as one column."""
    if "," in first_line:
        return ","
    for sep in (";", "\t"):
        if sep in first_line:
            return sep
    if first_line.strip() and any(c in first_line for c in "|: "):
        raise ResponseValidationError(f"{path}: the header {first_line.strip()[:60]!r} is not comma-, semicolon- or "
                                      "tab-separated; save the file as CSV")
    return ","


def read_responses(path: str | Path, bank=None, *, layout: str = "auto") -> ResponseTable:
    """Read a response file.

    Parameters
    ----------
    path : CSV file (comma-separated; semicolon- and tab-separated files are recognized by their header)
    bank : ItemBank, optional -- tells item columns from a person-id column in wide files
    layout : {"auto", "wide", "long"} -- "long" needs columns person, item, response;
        "auto" picks long when the header is exactly those three names.

    Rows are named by their line in the file. A row with more or fewer cells than the header, a duplicated
    column, a cell that is not a category number (empty, ``NA`` or ``.`` = not administered) and a second
    response of one person to one item are refused with the line and the column.
    """
    path = Path(path)
    text = read_text(path, "response file", ResponseValidationError)
    sep = _delimiter(text.split("\n", 1)[0], path)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    rows: list[tuple[int, list[str]]] = []
    for row in reader:
        if any(c.strip() for c in row):
            rows.append((reader.line_num, row))
    if not rows:
        raise ResponseValidationError(f"{path}: the file is empty")
    header = [h.strip() for h in rows[0][1]]
    lower = [h.lower() for h in header]
    dup = sorted({h for h in header if header.count(h) > 1 and h})
    if dup:
        raise ResponseValidationError(f"{path}, line {rows[0][0]}: column(s) {dup[:10]} appear more than once; give "
                                      "every item one column")
    for line, row in rows[1:]:
        if len(row) != len(header):
            raise ResponseValidationError(f"{path}, line {line}: {len(row)} cells but the header has {len(header)}; "
                                          "every row needs one cell per column (empty = not administered)")
    if layout == "long" or (layout == "auto" and sorted(lower) == ["item", "person", "response"]):
        if sorted(lower) != ["item", "person", "response"]:
            raise ResponseValidationError(f"{path}: a long file has exactly the columns person, item, response; "
                                          f"this one has {header}")
        p, i, r = lower.index("person"), lower.index("item"), lower.index("response")
        persons: dict[str, int] = {}
        items: dict[str, int] = {}
        cells = []
        for line, row in rows[1:]:
            pid, iid = row[p].strip(), row[i].strip()
            val = _cell(row[r], f"{path}, line {line}, column 'response'")
            key = (persons.setdefault(pid, len(persons)), items.setdefault(iid, len(items)))
            cells.append((key, val, line))
        values = np.full((len(persons), len(items)), np.nan)
        seen = set()
        for key, val, line in cells:
            if key in seen:
                raise ResponseValidationError(f"{path}, line {line}: a second response of the same person to the "
                                              "same item")
            seen.add(key)
            values[key] = val
        return ResponseTable(tuple(persons), tuple(items), values)
    first_is_person = (bank is not None and header[0] not in bank.index) or lower[0] in ("person", "id", "candidate",
                                                                                         "examinee", "")
    item_cols = header[1:] if first_is_person else header
    values = np.full((len(rows) - 1, len(item_cols)), np.nan)
    person_ids = []
    off = 1 if first_is_person else 0
    for n, (line, row) in enumerate(rows[1:]):
        person_ids.append(row[0].strip() if first_is_person else str(n + 1))
        for j, cell in enumerate(row[off:]):
            values[n, j] = _cell(cell, f"{path}, line {line}, column {item_cols[j]!r}")
    return ResponseTable(tuple(person_ids), tuple(item_cols), values)
