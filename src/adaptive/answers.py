"""Long-format answer records: one row per administered (person, item), with the option chosen and the time.

Adaptive data are 70-99% missing, so item analysis and the security statistics never build a persons × items
matrix: every array here has one entry per *answer* (``R`` rows), with integer person and item indices. A
record set is built from a dense matrix (:meth:`Records.from_matrix`), from the service's export
(``GET /api/v1/admin/responses?format=json``, :meth:`Records.from_rows`, :func:`read_records`) or from a
simulated :class:`~adaptive.cat.state.CatResult` (:meth:`Records.from_cat`).

Examples
--------
>>> import numpy as np
>>> from adaptive.synthetic import synthetic_bank
>>> bank = synthetic_bank(20, model="2pl", rng=1)
>>> x = np.array([[1, 0, np.nan] + [np.nan] * 17, [0, 1, 1] + [np.nan] * 17])
>>> rec = Records.from_matrix(bank, x)
>>> rec.n_records, rec.n_persons
(5, 2)
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import numpy as np

from .exceptions import ResponseValidationError
from .textfiles import read_text

__all__ = ["Records", "read_records", "read_answers", "read_item_ids", "parse_item_ids"]

#: the fields one exported answer row may carry; ``person``, ``item`` and ``response`` are required
ROW_FIELDS = ("person", "item", "response", "option", "seconds", "answered_at", "site", "window", "candidate",
              "seq", "pretest", "bank_version")


@dataclass(frozen=True)
class Records:
    """Answers in long format.

    Attributes
    ----------
    person, item : int arrays ``(R,)`` -- indices into ``person_ids`` and the bank's items
    category : int array ``(R,)`` -- the scored category (0/1 for dichotomous items)
    option : int array ``(R,)`` -- the option chosen (0 = A, as authored), -1 when unknown
    seconds : float array ``(R,)`` -- response time, NaN when unknown
    answered_at : float array ``(R,)`` -- POSIX time of the answer, NaN when unknown
    person_ids : tuple of str, length ``N``
    site, window : tuples of str, length ``N`` -- testing site and window of each person ("" when unknown)
    candidate : tuple of str, length ``N`` -- the candidate id behind each person (a session), "" when unknown
    n_items : int -- items in the bank
    """

    person: np.ndarray
    item: np.ndarray
    category: np.ndarray
    option: np.ndarray
    seconds: np.ndarray
    answered_at: np.ndarray
    person_ids: tuple[str, ...]
    n_items: int
    site: tuple[str, ...] = ()
    window: tuple[str, ...] = ()
    candidate: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.person_ids)
        for name in ("site", "window", "candidate"):
            if not getattr(self, name):
                object.__setattr__(self, name, ("",) * n)

    def __repr__(self) -> str:
        return (f"Records({self.n_records} answers of {self.n_persons} persons to {self.n_items} items; "
                f"times {'known' if self.has_times else 'unknown'})")

    @property
    def n_records(self) -> int:
        return int(self.person.size)

    @property
    def n_persons(self) -> int:
        return len(self.person_ids)

    @property
    def has_times(self) -> bool:
        return bool(np.isfinite(self.seconds).any())

    @property
    def log_seconds(self) -> np.ndarray:
        """``ln t`` per answer (NaN where the time is unknown or not positive)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.seconds > 0, np.log(np.where(self.seconds > 0, self.seconds, 1.0)), np.nan)

    def per_person(self, values, minlength: int | None = None) -> np.ndarray:
        """Sum of ``values (R,)`` per person: ``(N,)``."""
        return np.bincount(self.person, weights=values, minlength=self.n_persons if minlength is None else minlength)

    def per_item(self, values) -> np.ndarray:
        """Sum of ``values (R,)`` per item: ``(I,)``."""
        return np.bincount(self.item, weights=values, minlength=self.n_items)

    def answered(self) -> np.ndarray:
        """Answers per person ``(N,)``."""
        return np.bincount(self.person, minlength=self.n_persons)

    def subset(self, keep) -> Records:
        """The answers where ``keep (R,)`` is True (persons and their attributes unchanged)."""
        keep = np.asarray(keep, dtype=bool)
        return replace(self, person=self.person[keep], item=self.item[keep], category=self.category[keep],
                       option=self.option[keep], seconds=self.seconds[keep], answered_at=self.answered_at[keep])

    def dense(self, values=None) -> np.ndarray:
        """An ``(N, I)`` matrix of ``values`` (default the categories), NaN where not administered."""
        out = np.full((self.n_persons, self.n_items), np.nan)
        out[self.person, self.item] = self.category if values is None else values
        return out

    def to_rows(self, item_ids) -> list[dict]:
        """The answers as export rows (the service's JSON export format); ``item_ids`` are the bank's ids."""
        rows = []
        for r in range(self.n_records):  # an edge: one dict per answer for files
            p = int(self.person[r])
            rows.append({"person": self.person_ids[p], "item": item_ids[int(self.item[r])],
                         "response": int(self.category[r]),
                         "option": chr(ord("A") + int(self.option[r])) if self.option[r] >= 0 else "",
                         "seconds": None if np.isnan(self.seconds[r]) else round(float(self.seconds[r]), 1),
                         "answered_at": None if np.isnan(self.answered_at[r]) else round(float(self.answered_at[r])),
                         "site": self.site[p], "window": self.window[p]})
        return rows

    def to_csv(self, path, item_ids) -> Path:
        """Write the answers as an export CSV that :func:`read_records` reads back."""
        path = Path(path)
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=["person", "item", "response", "option", "seconds", "answered_at", "site",
                                               "window"], lineterminator="\n")
            w.writeheader()
            w.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in self.to_rows(item_ids))
        return path

    # ------------------------------------------------------------------ builders
    @classmethod
    def from_matrix(cls, bank, responses, *, seconds=None, options=None, answered_at=None, person_ids=None,
                    site=None, window=None) -> Records:
        """From an ``(N, I)`` matrix of categories in the bank's item order (NaN = not administered).

        ``seconds``, ``options`` (chosen option index, -1/NaN unknown) and ``answered_at`` are ``(N, I)``
        matrices aligned with ``responses``; ``site`` and ``window`` are per-person labels.
        """
        n_items = _n_items(bank)
        x = np.asarray(responses, dtype=float)
        if x.ndim != 2 or x.shape[1] != n_items:
            raise ResponseValidationError(f"responses have shape {x.shape}; the bank has {n_items} items, so pass an "
                                          f"(N, {n_items}) matrix with NaN where an item was not administered")
        person, item = np.nonzero(np.isfinite(x))
        cat = x[person, item]
        bad = (cat != np.round(cat)) | (cat < 0)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ResponseValidationError(f"row {person[k] + 1}, item {item[k] + 1}: {float(cat[k])!r} is not a "
                                          "category (0, 1, ... or NaN for not administered)")

        def aligned(m, what, fill):
            if m is None:
                return np.full(person.size, fill, dtype=float)
            m = np.asarray(m, dtype=float)
            if m.shape != x.shape:
                raise ResponseValidationError(f"{what} have shape {m.shape}; they must match the responses' {x.shape}")
            return m[person, item]

        opt = aligned(options, "options", -1.0)
        opt = np.where(np.isfinite(opt), opt, -1.0).astype(np.int64)
        n = x.shape[0]
        ids = tuple(str(p) for p in person_ids) if person_ids is not None else tuple(f"P{k + 1}" for k in range(n))
        if len(ids) != n:
            raise ResponseValidationError(f"{len(ids)} person ids for {n} response rows; give one id per row")
        rec = cls(person=person.astype(np.int64), item=item.astype(np.int64), category=cat.astype(np.int64),
                  option=opt, seconds=aligned(seconds, "seconds", np.nan),
                  answered_at=aligned(answered_at, "answered_at", np.nan), person_ids=ids, n_items=n_items,
                  site=_labels(site, n, "site"), window=_labels(window, n, "window"))
        _check_categories(bank, rec)
        return rec

    @classmethod
    def from_cat(cls, result, *, seconds=None, options=None, person_ids=None, site=None, window=None,
                 scored_only: bool = True) -> Records:
        """From a simulated :class:`~adaptive.cat.state.CatResult`; ``seconds``/``options`` are ``(N, T)``
        arrays aligned with ``result.sequence`` (the t-th item each simulee took)."""
        seq = result.sequence
        keep = seq >= 0
        if scored_only:
            keep &= result.scored
        person, step = np.nonzero(keep)
        n = seq.shape[0]
        sec = np.full(person.size, np.nan) if seconds is None else np.asarray(seconds, dtype=float)[person, step]
        opt = (np.full(person.size, -1) if options is None
               else np.asarray(options)[person, step].astype(np.int64))
        ids = tuple(str(p) for p in person_ids) if person_ids is not None else tuple(f"S{k + 1}" for k in range(n))
        return cls(person=person.astype(np.int64), item=seq[person, step].astype(np.int64),
                   category=result.response[person, step].astype(np.int64), option=opt, seconds=sec,
                   answered_at=np.full(person.size, np.nan), person_ids=ids, n_items=len(result.item_ids),
                   site=_labels(site, n, "site"), window=_labels(window, n, "window"))

    @classmethod
    def from_rows(cls, bank, rows, *, source: str = "the export", include_pretest: bool = False) -> Records:
        """From answer rows as the service exports them (dicts with ``person``, ``item``, ``response`` and
        optionally ``option`` (letter or index), ``seconds``, ``answered_at`` (POSIX seconds or ISO 8601),
        ``site``, ``window``). Pretest answers are left out unless ``include_pretest``."""
        index = bank.index
        persons: dict[str, int] = {}
        site: dict[int, str] = {}
        window: dict[int, str] = {}
        candidate: dict[int, str] = {}
        cols: dict[str, list] = {k: [] for k in ("person", "item", "category", "option", "seconds", "answered_at")}
        for r, row in enumerate(rows, start=1):
            where = f"{source}, row {r}"
            if not isinstance(row, dict):
                raise ResponseValidationError(f"{where}: an answer row must be an object with person, item and "
                                              "response")
            missing = [k for k in ("person", "item", "response") if row.get(k) in (None, "")]
            if missing:
                raise ResponseValidationError(f"{where}: field(s) {', '.join(missing)} missing; every answer row needs "
                                              "person, item and response")
            if not include_pretest and _truthy(row.get("pretest")):
                continue
            item = str(row["item"])
            if item not in index:
                raise ResponseValidationError(f"{where}, field 'item': {item!r} is not in bank {bank.name!r}; "
                                              "analyse the export with the bank version the candidates took")
            p = persons.setdefault(str(row["person"]), len(persons))
            cols["person"].append(p)
            cols["item"].append(index[item])
            cols["category"].append(_number(row["response"], where, "response", integer=True))
            cols["option"].append(_option(row.get("option"), where))
            cols["seconds"].append(_number(row.get("seconds"), where, "seconds"))
            cols["answered_at"].append(_time(row.get("answered_at"), where))
            for key, store in (("site", site), ("window", window), ("candidate", candidate)):
                val = row.get(key)
                if val not in (None, ""):
                    store.setdefault(p, str(val))
        if not persons:
            raise ResponseValidationError(f"{source} has no scored answers; export finished sessions and try again")
        n = len(persons)
        rec = cls(person=np.asarray(cols["person"], np.int64), item=np.asarray(cols["item"], np.int64),
                  category=np.asarray(cols["category"], np.int64), option=np.asarray(cols["option"], np.int64),
                  seconds=np.asarray(cols["seconds"], float), answered_at=np.asarray(cols["answered_at"], float),
                  person_ids=tuple(persons), n_items=len(bank),
                  site=tuple(site.get(k, "") for k in range(n)), window=tuple(window.get(k, "") for k in range(n)),
                  candidate=tuple(candidate.get(k, "") for k in range(n)))
        _check_categories(bank, rec, source)
        return rec


def read_records(path: str | Path, bank, *, include_pretest: bool = False) -> Records:
    """Read the service's answer export: JSON (a list of rows, as ``format=json`` gives) or CSV with a header
    naming at least ``person,item,response`` (and any of ``option,seconds,answered_at,site,window``)."""
    path = Path(path)
    text = read_text(path, "response export", ResponseValidationError)
    stripped = text.lstrip()
    if stripped.startswith("[") or stripped.startswith("{"):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as err:
            raise ResponseValidationError(f"{path}: not valid JSON (line {err.lineno}, column {err.colno}: "
                                          f"{err.msg}); export with format=json again") from None
        if isinstance(rows, dict):
            rows = rows.get("answers", rows.get("rows"))
        if not isinstance(rows, list):
            raise ResponseValidationError(f"{path}: expected a JSON list of answer rows (as the service's "
                                          "/admin/responses?format=json gives)")
    else:
        reader = csv.DictReader(io.StringIO(text))
        head = [h.strip() for h in (reader.fieldnames or [])]
        need = [h for h in ("person", "item", "response") if h not in head]
        if need:
            raise ResponseValidationError(f"{path}: the header lacks column(s) {', '.join(need)}; a security export "
                                          "needs person,item,response and ideally option,seconds,answered_at,site,"
                                          "window")
        rows = [{k.strip(): v for k, v in row.items() if k is not None} for row in reader]
    return Records.from_rows(bank, rows, source=str(path), include_pretest=include_pretest)


def read_answers(path: str | Path, bank, *, include_pretest: bool = False) -> Records:
    """Any response file as :class:`Records`: the service's export (JSON, or long CSV with person,item,response
    and any of option,seconds,answered_at,site,window) or a wide CSV (one column per item id)."""
    from .data_io import read_responses

    p = Path(path)
    head = ""
    try:
        with p.open(encoding="utf-8") as fh:
            head = fh.readline()
    except (OSError, UnicodeDecodeError):
        pass  # read_records / read_responses name the problem
    cells = {c.strip() for c in head.replace(";", ",").split(",")}
    if head.lstrip().startswith(("[", "{")) or {"person", "item", "response"} <= cells:
        return read_records(p, bank, include_pretest=include_pretest)
    table = read_responses(p, bank)
    return Records.from_matrix(bank, table.for_bank(bank), person_ids=table.person_ids)


def parse_item_ids(text: str) -> list[str]:
    """Item ids separated by commas, spaces or lines; ``#`` starts a comment."""
    lines = (line.split("#")[0] for line in text.splitlines())
    return [t for line in lines for t in line.replace(",", " ").split() if t]


def read_item_ids(path: str | Path) -> list[str]:
    """A list of item ids from a text file (one per line or comma-separated; ``#`` comments)."""
    return parse_item_ids(read_text(Path(path), "item list", ResponseValidationError))


# ---------------------------------------------------------------------- helpers
def _n_items(bank) -> int:
    return bank.n_items if hasattr(bank, "n_items") else len(bank)


def _labels(values, n: int, what: str) -> tuple[str, ...]:
    if values is None:
        return ("",) * n
    out = tuple("" if v is None else str(v) for v in values)
    if len(out) != n:
        raise ResponseValidationError(f"{len(out)} {what} labels for {n} persons; give one per person")
    return out


def _truthy(v) -> bool:
    return v is True or (isinstance(v, str) and v.strip().lower() in ("true", "1", "yes")) or v == 1


def _number(v, where: str, name: str, integer: bool = False) -> float:
    if v is None or (isinstance(v, str) and v.strip().lower() in ("", "na", "nan", "null")):
        if integer:
            raise ResponseValidationError(f"{where}, field {name!r}: empty; give the scored category")
        return math.nan
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise ResponseValidationError(f"{where}, field {name!r}: {v!r} is not a number") from None
    if integer and (not math.isfinite(x) or x != round(x) or x < 0):
        raise ResponseValidationError(f"{where}, field {name!r}: {v!r} is not a category (0, 1, ...)")
    if not integer and math.isfinite(x) and x < 0:
        raise ResponseValidationError(f"{where}, field {name!r}: {v!r} is negative; times are seconds >= 0")
    return x


def _option(v, where: str) -> int:
    if v is None or v == "":
        return -1
    if isinstance(v, str):
        s = v.strip().upper()
        if len(s) == 1 and "A" <= s <= "Z":
            return ord(s) - ord("A")
        if s.isdigit():
            return int(s)
        raise ResponseValidationError(f"{where}, field 'option': {v!r} is not an option letter (A, B, ...)")
    if isinstance(v, (int, float)) and float(v).is_integer() and v >= 0:
        return int(v)
    raise ResponseValidationError(f"{where}, field 'option': {v!r} is not an option letter (A, B, ...)")


def _time(v, where: str) -> float:
    if v is None or v == "":
        return math.nan
    if isinstance(v, (int, float)):
        return float(v)
    s = str(v).strip()
    try:
        return float(s)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ResponseValidationError(f"{where}, field 'answered_at': {v!r} is neither POSIX seconds nor an ISO 8601 "
                                      "time") from None


def _check_categories(bank, rec: Records, source: str = "responses") -> None:
    arrays = bank.compile() if hasattr(bank, "compile") else bank
    bad = rec.category >= arrays.n_cat[rec.item]
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ResponseValidationError(
            f"{source}: person {rec.person_ids[rec.person[k]]!r}, item {arrays.ids[rec.item[k]]!r}: category "
            f"{rec.category[k]} but the item has {arrays.n_cat[rec.item[k]]} (0..{arrays.n_cat[rec.item[k]] - 1})")
