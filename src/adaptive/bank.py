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

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import json
import math
import warnings
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .exceptions import BankValidationError
from .irt import mixed
from .irt._terms import LogProbTerms

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
    "theta_grid",
]

ModelName = Literal["rasch", "1pl", "2pl", "3pl", "4pl", "graded", "gpcm", "pcm"]
Status = Literal["operational", "pretest", "retired"]

#: the model names an item may declare
MODELS: tuple[str, ...] = ("rasch", "1pl", "2pl", "3pl", "4pl", "graded", "gpcm", "pcm")
DICHOTOMOUS_MODELS = frozenset({"rasch", "1pl", "2pl", "3pl", "4pl"})
FAMILY_OF_MODEL = {
    **{m: mixed.DICHOTOMOUS for m in DICHOTOMOUS_MODELS},
    "graded": mixed.GRADED,
    "gpcm": mixed.PARTIAL_CREDIT,
    "pcm": mixed.PARTIAL_CREDIT,
}
STATUSES: tuple[str, ...] = ("operational", "pretest", "retired")

_FROZEN = ConfigDict(extra="forbid", frozen=True)


class Provenance(BaseModel):
    """Where an item's parameters come from."""

    model_config = _FROZEN
    method: str | None = Field(None, description="how the parameters were obtained, e.g. 'MML-EM 2PL'")
    software: str | None = None
    sample_size: int | None = Field(None, ge=1)
    date: _dt.date | None = None
    note: str | None = None


class ItemContent(BaseModel):
    """What the candidate sees; the numerics never need it.

    ``key`` is the letter of the correct option (``"A"`` is ``options[0]``).
    """

    model_config = _FROZEN
    stem: str = Field(min_length=1)
    options: list[str] = Field(default_factory=list)
    key: str | None = Field(None, pattern=r"^[A-Z]$")
    rationale: str | None = None
    cognitive_level: str | None = None

    @model_validator(mode="after")
    def _check(self) -> ItemContent:
        problems = []
        if len(set(o.strip().casefold() for o in self.options)) != len(self.options):
            problems.append("field 'content.options': options must be distinct")
        if self.key is not None and ord(self.key) - ord("A") >= len(self.options):
            problems.append(f"field 'content.key': key {self.key!r} is not among the {len(self.options)} options")
        if problems:
            raise ValueError("\n".join(problems))
        return self


class BlueprintDomain(BaseModel):
    """One content domain of a blueprint: a target proportion and/or count bounds."""

    model_config = _FROZEN
    name: str = Field(min_length=1)
    proportion: float | None = Field(None, ge=0.0, le=1.0)
    min_items: int | None = Field(None, ge=0)
    max_items: int | None = Field(None, ge=0)
    source: str | None = None

    @model_validator(mode="after")
    def _check(self) -> BlueprintDomain:
        if self.min_items is not None and self.max_items is not None and self.min_items > self.max_items:
            raise ValueError(f"domain {self.name!r}: min_items {self.min_items} > max_items {self.max_items}")
        return self


class Blueprint(BaseModel):
    """Content domains an exam draws from."""

    model_config = _FROZEN
    domains: list[BlueprintDomain] = Field(min_length=1)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.domains)

    @model_validator(mode="after")
    def _check(self) -> Blueprint:
        dup = [n for n, k in Counter(self.names).items() if k > 1]
        if dup:
            raise ValueError(f"blueprint domains appear more than once: {dup}")
        props = [d.proportion for d in self.domains if d.proportion is not None]
        if props and len(props) == len(self.domains) and abs(sum(props) - 1.0) > 1e-6:
            raise ValueError(f"blueprint proportions sum to {sum(props):.6g}, not 1")
        return self


def _finite(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


class Item(BaseModel):
    """One calibrated item: identity, model, parameters, metadata and content.

    Parameter rules (each broken rule is reported with the field it concerns):
    ``a > 0`` (and ``a = 1`` for rasch/pcm); ``0 <= c < d <= 1`` (``c = 0`` for
    rasch/1pl/2pl, ``d = 1`` below the 4PL); dichotomous items need ``b`` and
    no thresholds; polytomous items need at least one threshold, no ``b``,
    ``c`` or ``d``, and graded thresholds strictly increasing;
    ``n_categories``, when given, equals ``len(thresholds) + 1`` (2 for
    dichotomous items).
    """

    model_config = _FROZEN

    id: str = Field(min_length=1, description="unique item identifier")
    model: ModelName = "2pl"
    a: float = Field(1.0, description="slope (discrimination)")
    b: float | None = Field(None, description="difficulty (dichotomous models)")
    c: float = Field(0.0, description="lower asymptote (guessing)")
    d: float = Field(1.0, description="upper asymptote")
    thresholds: list[float] | None = Field(
        None, description="graded: category thresholds b_1..b_{K-1}; gpcm/pcm: step parameters"
    )
    n_categories: int | None = Field(None, ge=2, description="optional check on the number of categories")
    domain: str | None = None
    subdomain: str | None = None
    code_set: str | None = Field(None, description="e.g. ICD-10-CM, CPT, HCPCS Level II")
    code_set_year: int | None = Field(None, ge=1900, le=2200)
    enemies: list[str] = Field(default_factory=list, description="ids of items never given in the same test")
    enemy_groups: list[str] = Field(default_factory=list, description="items sharing a group are enemies")
    status: Status = "operational"
    exposure: float | None = Field(None, gt=0.0, le=1.0, description="Sympson-Hetter exposure-control parameter")
    exposure_conditional: list[Annotated[float, Field(gt=0.0, le=1.0)]] | None = Field(
        None, min_length=2, description="conditional Sympson-Hetter parameters, one per θ̂ stratum of the design's "
                                        "exposure.strata (Stocking & Lewis 1998)")
    provenance: Provenance | None = None
    content: ItemContent | None = None

    @model_validator(mode="after")
    def _check(self) -> Item:
        problems = _parameter_problems(self)
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def family(self) -> int:
        return FAMILY_OF_MODEL[self.model]

    @property
    def n_cat(self) -> int:
        return 2 if self.model in DICHOTOMOUS_MODELS else len(self.thresholds or []) + 1


def _parameter_problems(item: Item) -> list[str]:
    """Every broken parameter rule of one item, as ``field 'x': what, what to do``."""
    p: list[str] = []
    m = item.model
    if not _finite(item.a) or item.a <= 0:
        p.append(f"field 'a': slope must be a finite number > 0, got {item.a!r}")
    elif m in ("rasch", "pcm") and item.a != 1.0:
        p.append(f"field 'a': the {m} model fixes a = 1, got {item.a!r}; use model '{'1pl' if m == 'rasch' else 'gpcm'}'")
    for name in ("c", "d"):
        v = getattr(item, name)
        if not _finite(v) or not 0.0 <= v <= 1.0:
            p.append(f"field '{name}': must be in [0, 1], got {v!r}")
    if _finite(item.c) and _finite(item.d) and item.c >= item.d:
        p.append(f"field 'c': lower asymptote c = {item.c!r} must be below the upper asymptote d = {item.d!r}")
    if m in DICHOTOMOUS_MODELS:
        if item.b is None or not _finite(item.b):
            p.append(f"field 'b': the {m} model needs a finite difficulty b, got {item.b!r}")
        if item.thresholds:
            p.append(f"field 'thresholds': a {m} item has no thresholds; give 'b' or change the model")
        if m in ("rasch", "1pl", "2pl") and item.c != 0.0:
            p.append(f"field 'c': the {m} model has c = 0, got {item.c!r}; use model '3pl'")
        if m in ("rasch", "1pl", "2pl", "3pl") and item.d != 1.0:
            p.append(f"field 'd': the {m} model has d = 1, got {item.d!r}; use model '4pl'")
        if item.n_categories not in (None, 2):
            p.append(f"field 'n_categories': a {m} item has 2 categories, got {item.n_categories}")
    else:
        thr = item.thresholds or []
        if not thr:
            p.append(f"field 'thresholds': the {m} model needs at least one threshold")
        elif not all(_finite(t) for t in thr):
            p.append(f"field 'thresholds': all thresholds must be finite numbers, got {thr}")
        elif m == "graded" and any(t1 >= t2 for t1, t2 in zip(thr, thr[1:])):
            p.append(f"field 'thresholds': graded thresholds must be strictly increasing, got {thr}")
        if item.b is not None:
            p.append(f"field 'b': a {m} item takes 'thresholds', not 'b'")
        if item.c != 0.0 or item.d != 1.0:
            p.append(f"field 'c': a {m} item has no asymptotes (c = 0, d = 1), got c = {item.c!r}, d = {item.d!r}")
        if item.n_categories is not None and thr and item.n_categories != len(thr) + 1:
            p.append(
                f"field 'n_categories': {item.n_categories} categories declared but {len(thr)} thresholds "
                f"give {len(thr) + 1}"
            )
    if item.id in item.enemies:
        p.append("field 'enemies': an item cannot be its own enemy")
    return p


def _cross_item_problems(records: list[dict], blueprint: Blueprint | None) -> list[str]:
    """Problems that need the whole bank: duplicate ids, unknown enemies, domains outside the blueprint.

    ``records`` are the items as dicts (possibly invalid ones), in bank order.
    """
    problems = []
    ids = [str(r.get("id")) if isinstance(r, dict) else None for r in records]
    counts = Counter(i for i in ids if i is not None)
    seen: set[str] = set()
    for pos, iid in enumerate(ids):
        if iid is not None and counts[iid] > 1 and iid not in seen:
            where = [k for k, x in enumerate(ids) if x == iid]
            problems.append(
                f"item {iid!r} (positions {where}), field 'id': duplicate id; every item needs its own id"
            )
            seen.add(iid)
    known = set(counts)
    domains = set(blueprint.names) if blueprint is not None else None
    for pos, rec in enumerate(records):
        if not isinstance(rec, dict):
            continue
        enemies = rec.get("enemies") or []
        if isinstance(enemies, (list, tuple)):
            unknown = [e for e in enemies if e not in known]
            if unknown:
                problems.append(
                    f"item {ids[pos]!r} (position {pos}), field 'enemies': refers to unknown item(s) {unknown}; "
                    "remove them or add those items to the bank"
                )
        dom = rec.get("domain")
        if domains is not None:
            if dom is None:
                problems.append(
                    f"item {ids[pos]!r} (position {pos}), field 'domain': missing, but the bank declares a "
                    f"blueprint with domains {sorted(domains)}"
                )
            elif dom not in domains:
                problems.append(
                    f"item {ids[pos]!r} (position {pos}), field 'domain': {dom!r} is not a blueprint domain "
                    f"({sorted(domains)}); fix the tag or add the domain to the blueprint"
                )
    return problems


def _format_pydantic(err: ValidationError, prefix_of) -> list[str]:
    """Turn pydantic errors into one line per problem, naming the item and field."""
    out = []
    for e in err.errors():
        loc = list(e["loc"])
        prefix, rest = prefix_of(loc)
        msg = e["msg"].removeprefix("Value error, ")
        if rest:
            out.append(f"{prefix}field '{'.'.join(map(str, rest))}': {msg}")
        else:
            out.extend(f"{prefix}{line}" for line in msg.split("\n"))
    return out


class ItemBank(BaseModel):
    """A validated, immutable collection of items.

    Construct from Python objects, :meth:`from_json` or :meth:`from_csv`. All
    problems of a bank are reported together in one
    :class:`~adaptive.exceptions.BankValidationError`, each naming the item
    (id and position) and the field.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "bank"
    version: str = "1"
    description: str | None = None
    scaling: float = Field(1.0, gt=0.0, description="D in exp(-D a (theta - b)); 1.0 logistic, 1.702 normal-ogive")
    blueprint: Blueprint | None = None
    items: list[Item] = Field(min_length=1)

    def __init__(self, /, **data: Any):
        # Validate items one by one so that every problem is reported, not only the first.
        records = data.get("items")
        if isinstance(records, list):
            problems = []
            for pos, rec in enumerate(records):
                if isinstance(rec, Item):
                    continue
                try:
                    Item.model_validate(rec)
                except ValidationError as err:
                    iid = rec.get("id") if isinstance(rec, dict) else None
                    problems += _format_pydantic(err, lambda loc, i=iid, p=pos: (f"item {i!r} (position {p}), ", loc))
            dicts = [r.model_dump() if isinstance(r, Item) else r for r in records]
            blueprint = data.get("blueprint")
            try:
                bp = Blueprint.model_validate(blueprint) if blueprint is not None else None
            except ValidationError as err:
                problems += _format_pydantic(err, lambda loc: ("blueprint, ", loc))
                bp = None
            problems += _cross_item_problems(dicts, bp)
            if problems:
                raise BankValidationError(problems)
        try:
            super().__init__(**data)
        except ValidationError as err:
            def where(loc):
                if loc and loc[0] == "items" and len(loc) > 1 and isinstance(loc[1], int):
                    return f"item at position {loc[1]}, ", loc[2:]
                return "bank, ", loc
            raise BankValidationError(_format_pydantic(err, where)) from None

    @model_validator(mode="after")
    def _check_bank(self) -> ItemBank:
        problems = _cross_item_problems([it.model_dump() for it in self.items], self.blueprint)
        if problems:
            raise ValueError("\n".join(problems))
        return self

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return len(self.items)

    @cached_property
    def ids(self) -> tuple[str, ...]:
        """Item ids in bank order."""
        return tuple(it.id for it in self.items)

    @cached_property
    def index(self) -> dict[str, int]:
        """Position of each item id."""
        return {iid: k for k, iid in enumerate(self.ids)}

    def item(self, item_id: str) -> Item:
        """The item with this id (``KeyError`` naming it when absent)."""
        try:
            return self.items[self.index[item_id]]
        except KeyError:
            raise KeyError(f"item {item_id!r} is not in bank {self.name!r}") from None

    def fingerprint(self) -> str:
        """Short SHA-256 (16 hex digits) of the bank's canonical JSON: equal banks, equal fingerprints."""
        return _fingerprint(self)

    # ------------------------------------------------------------------ numerics
    def compile(self) -> ItemArrays:
        """Struct-of-arrays view for the numerics (computed once per bank)."""
        return self._arrays

    @cached_property
    def _arrays(self) -> ItemArrays:
        return ItemArrays.from_items(self.items, scaling=self.scaling)

    def tables(self, grid=None) -> GridTables:
        """Grid tables (log-probabilities, information) of the compiled bank; see :meth:`ItemArrays.tables`."""
        return self.compile().tables(grid)

    # ------------------------------------------------------------------ JSON
    @classmethod
    def from_dict(cls, data: dict, source: str | None = None) -> ItemBank:
        """Validate a bank from a dict, reporting every problem with ``source`` in the message."""
        if not isinstance(data, dict):
            raise BankValidationError([f"the bank must be a JSON object with an 'items' list, got {type(data).__name__}"], source)
        try:
            return cls(**data)
        except BankValidationError as err:
            raise BankValidationError(err.problems, source) from None

    @classmethod
    def load(cls, path: str | Path) -> ItemBank:
        """Read a bank from ``.json`` or ``.csv``, or from a pool directory's ``bank.json``."""
        p = Path(path)
        if p.is_dir():
            p = p / "bank.json"
        if not p.exists():
            raise BankValidationError([f"bank file {str(p)!r} does not exist; give a .json or .csv bank, or a "
                                       "directory holding bank.json"])
        return cls.from_csv(p) if p.suffix.lower() == ".csv" else cls.from_json(p)

    @classmethod
    def from_json(cls, path: str | Path) -> ItemBank:
        """Read a bank written by :meth:`to_json` (or any JSON matching :meth:`json_schema`)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise BankValidationError(
                [f"not valid JSON at line {err.lineno}, column {err.colno}: {err.msg}"], str(path)
            ) from None
        return cls.from_dict(data, source=str(path))

    def to_json(self, path: str | Path | None = None, indent: int = 2) -> str:
        """Write the bank as JSON (exact: floats keep every bit); returns the text."""
        text = self.model_dump_json(indent=indent, exclude_defaults=True)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    @classmethod
    def json_schema(cls) -> dict:
        """The JSON Schema of the bank format."""
        return cls.model_json_schema()

    # ------------------------------------------------------------------ CSV
    @classmethod
    def from_csv(cls, path: str | Path, model: str | None = None, **bank_fields: Any) -> ItemBank:
        """Read a parameter table.

        Columns (case-insensitive; unknown columns are ignored with a warning):

        * ``id`` (generated as ``I0001``... when absent), ``model``;
        * catR/IRT style ``a, b, c, d`` (``d`` = upper asymptote), and
          ``b1..bk`` for graded thresholds or GPCM steps;
        * mirt slope-intercept style ``a1, d, g, u`` (``b = -d/a``), and
          ``d1..dk`` for graded intercepts (``b_k = -d_k/a``) or, for
          ``gpcm``, ``d0..dk`` (``b_v = -(d_v - d_{v-1})/a``);
        * metadata ``domain, subdomain, code_set, code_set_year, status,
          exposure, n_categories, enemies, enemy_groups`` (lists separated by
          ``;``) and ``scaling`` (constant over rows).

        Without a ``model`` column (or the ``model`` argument), dichotomous
        rows are 4PL if any ``d < 1``, 3PL if any ``c > 0``, else 2PL; rows with
        thresholds need ``model`` ('graded' or 'gpcm').
        """
        path = Path(path)
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
        if not rows:
            raise BankValidationError(["the file is empty; it needs a header row"], str(path))
        records, problems, extras = _records_from_table(rows[0], rows[1:], model)
        if extras:
            warnings.warn(f"{path}: ignoring unknown column(s) {extras}", stacklevel=2)
        if problems:
            raise BankValidationError(problems, str(path))
        scal = {r.pop("scaling") for r in records if "scaling" in r}
        if len(scal) > 1:
            raise BankValidationError([f"column 'scaling' must be constant, found {sorted(scal)}"], str(path))
        if scal and "scaling" not in bank_fields:
            bank_fields["scaling"] = scal.pop()
        bank_fields.setdefault("name", path.stem)
        return cls.from_dict({**bank_fields, "items": records}, source=str(path))

    def to_csv(self, path: str | Path | None = None) -> str:
        """Write the parameter table (parameters and metadata; content and provenance stay in JSON).

        Columns: ``id, model, a, b, c, d, b1..bk`` then the metadata columns that
        any item uses. Floats are written with ``repr``, so reading the file
        back gives the same numbers bit for bit.
        """
        k_max = max((len(it.thresholds or []) for it in self.items), default=0)
        meta = [m for m in _META_COLUMNS if any(_meta_value(it, m) != "" for it in self.items)]
        header = ["id", "model", "a", "b", "c", "d"] + [f"b{k}" for k in range(1, k_max + 1)] + meta
        if self.scaling != 1.0:
            header.append("scaling")
        out_rows = []
        for it in self.items:
            thr = list(it.thresholds or [])
            row = [it.id, it.model, repr(it.a), "" if it.b is None else repr(it.b), repr(it.c), repr(it.d)]
            row += [repr(t) for t in thr] + [""] * (k_max - len(thr))
            row += [_meta_value(it, m) for m in meta]
            if self.scaling != 1.0:
                row.append(repr(self.scaling))
            out_rows.append(row)
        import io

        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(out_rows)
        text = buf.getvalue()
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text


_META_COLUMNS = ("domain", "subdomain", "code_set", "code_set_year", "status", "exposure", "n_categories",
                 "enemies", "enemy_groups")
_LIST_COLUMNS = ("enemies", "enemy_groups")


def _meta_value(item: Item, column: str) -> str:
    v = getattr(item, column)
    if column in _LIST_COLUMNS:
        return ";".join(v)
    if column == "status":
        return "" if v == "operational" else v
    if v is None:
        return ""
    return repr(v) if isinstance(v, float) else str(v)


def _records_from_table(header: list[str], rows: list[list[str]], model: str | None):
    """Parse a parameter table into item dicts; returns (records, problems, unknown columns)."""
    cols = [h.strip().lower() for h in header]
    problems: list[str] = []
    mirt_naming = "a1" in cols
    irt_style = "a" in cols and ("b" in cols or any(len(c) > 1 and c[0] == "b" and c[1:].isdigit() for c in cols))
    if not irt_style and not mirt_naming:
        problems.append("the table needs IRT columns (a, b or b1..bk) or mirt slope-intercept columns (a1, d or d1..dk)")
    numbered = {}
    for pos, c in enumerate(cols):
        if len(c) > 1 and c[0] in "bd" and c[1:].isdigit():
            numbered.setdefault(c[0], {})[int(c[1:])] = pos
    known = {"id", "item", "model", "a", "b", "c", "d", "a1", "g", "u", "scaling", *_META_COLUMNS}
    extras = [header[k] for k, c in enumerate(cols) if c not in known and not (len(c) > 1 and c[0] in "bd" and c[1:].isdigit())
              and not (c.startswith("ak") and c[2:].isdigit())]
    col = {c: k for k, c in enumerate(cols)}
    records = []
    for r, raw in enumerate(rows, start=2):
        if not any(cell.strip() for cell in raw):
            continue
        cells = {c: (raw[k].strip() if k < len(raw) else "") for c, k in col.items()}
        iid = cells.get("id") or cells.get("item") or f"I{len(records) + 1:04d}"
        where = f"row {r} (item {iid!r}), "

        def num(name, cell=None):
            text = cells.get(name, "") if cell is None else cell
            if text == "" or text.upper() in ("NA", "NAN"):
                return None
            try:
                return float(text)
            except ValueError:
                problems.append(f"{where}field '{name}': {text!r} is not a number")
                return None

        rec: dict[str, Any] = {"id": iid}
        mdl = (cells.get("model") or model or "").lower() or None
        if irt_style:
            # a, b, c (and d = upper asymptote unless the file uses mirt naming, where d is an intercept)
            for name in ("a", "b", "c") + (() if mirt_naming else ("d",)):
                v = num(name)
                if v is not None:
                    rec[name] = v
            if mirt_naming:
                for src, dst in (("g", "c"), ("u", "d")):
                    v = num(src)
                    if v is not None:
                        rec[dst] = v
            bnum = numbered.get("b", {})
            if bnum:
                thr = [num(f"b{k}", raw[pos].strip() if pos < len(raw) else "") for k, pos in sorted(bnum.items())]
                thr = [t for t in thr if t is not None]
                if thr:
                    rec["thresholds"] = thr
        else:  # mirt slope-intercept: a1, d (or d1..dk / d0..dk), g, u
            a = num("a1")
            rec["a"] = a
            for src, dst in (("g", "c"), ("u", "d")):
                v = num(src)
                if v is not None:
                    rec[dst] = v
            dnum = numbered.get("d", {})
            if dnum:
                ints = {k: num(f"d{k}", raw[pos].strip() if pos < len(raw) else "") for k, pos in dnum.items()}
                ints = {k: v for k, v in ints.items() if v is not None}
                if a and ints:
                    if mdl in ("gpcm", "pcm") or 0 in ints:
                        mdl = mdl or "gpcm"
                        ks = sorted(ints)
                        rec["thresholds"] = [-(ints[k] - ints[k - 1]) / a for k in ks if k >= 1 and k - 1 in ints]
                    else:
                        rec["thresholds"] = [-ints[k] / a for k in sorted(ints)]
            else:
                dint = num("d")
                if a and dint is not None:
                    rec["b"] = -dint / a
        if mdl:
            rec["model"] = mdl
        elif "thresholds" in rec:
            problems.append(f"{where}field 'model': thresholds given but no model; add a 'model' column "
                            "(graded or gpcm) or pass model=")
        for name in _META_COLUMNS:
            text = cells.get(name, "")
            if text == "":
                continue
            if name in _LIST_COLUMNS:
                rec[name] = [t.strip() for t in text.replace("|", ";").split(";") if t.strip()]
            elif name in ("code_set_year", "n_categories"):
                try:
                    rec[name] = int(float(text))
                except ValueError:
                    problems.append(f"{where}field '{name}': {text!r} is not a whole number")
            elif name == "exposure":
                v = num(name)
                if v is not None:
                    rec[name] = v
            else:
                rec[name] = text
        if cells.get("scaling"):
            rec["scaling"] = num("scaling")
        records.append(rec)
    if not model and "model" not in col:
        dich = [rec for rec in records if "thresholds" not in rec and "model" not in rec]
        if dich:
            guess = ("4pl" if any(rec.get("d", 1.0) < 1.0 for rec in dich)
                     else "3pl" if any(rec.get("c", 0.0) > 0.0 for rec in dich) else "2pl")
            for rec in dich:
                rec["model"] = guess
    return records, problems, extras


# ---------------------------------------------------------------------------- arrays


def _fingerprint(model: BaseModel) -> str:
    """Short SHA-256 of a pydantic model's canonical JSON (defaults left out, so a new default field
    does not change the fingerprint of what was stored before it)."""
    return hashlib.sha256(model.model_dump_json(exclude_defaults=True).encode()).hexdigest()[:16]


def cell_edges(grid: np.ndarray) -> np.ndarray:
    """Edges of the cells around grid points (midpoints between neighbours; end cells as wide as their
    neighbour), ``(Q + 1,)``: each point's mass spreads uniformly over its cell."""
    grid = np.asarray(grid, dtype=float)
    return np.concatenate([[grid[0] - (grid[1] - grid[0]) / 2], (grid[1:] + grid[:-1]) / 2,
                           [grid[-1] + (grid[-1] - grid[-2]) / 2]])


def theta_grid(grid=None) -> np.ndarray:
    """A quadrature grid from ``(lo, hi, n)``, an array of points, or ``None`` (61 points on [-6, 6])."""
    if grid is None:
        grid = (-6.0, 6.0, 61)
    if isinstance(grid, tuple) and len(grid) == 3:
        lo, hi, n = grid
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi and int(n) >= 2):
            raise ValueError(f"grid (lo, hi, n) needs lo < hi finite and n >= 2, got {grid}")
        return np.linspace(float(lo), float(hi), int(n))
    pts = np.asarray(grid, dtype=float)
    if pts.ndim != 1 or pts.size < 2 or not np.all(np.isfinite(pts)) or np.any(np.diff(pts) <= 0):
        raise ValueError("grid points must be a finite, strictly increasing 1-D array of at least 2 points")
    return pts


@dataclass(frozen=True)
class GridTables:
    """Model quantities of every item on a θ grid, computed once per bank and grid.

    Attributes
    ----------
    theta : ndarray, shape ``(Q,)``
    log_prob : ndarray, shape ``(I, Q, K)``
        :math:`\\log P_{ik}(\\theta_q)`; ``LOG_ZERO`` for categories an item lacks.
    dlog_prob, d2log_prob : ndarray, shape ``(I, Q, K)``
        θ-derivatives of ``log_prob``.
    information : ndarray, shape ``(I, Q)``
    """

    theta: np.ndarray
    log_prob: np.ndarray
    dlog_prob: np.ndarray
    d2log_prob: np.ndarray
    information: np.ndarray

    @property
    def n_points(self) -> int:
        return self.theta.size


def _conditional_exposure(items) -> np.ndarray:
    n_strata = max((len(it.exposure_conditional) for it in items if it.exposure_conditional), default=0)
    out = np.ones((len(items), n_strata))
    for k, it in enumerate(items):
        if it.exposure_conditional and len(it.exposure_conditional) == n_strata:
            out[k] = it.exposure_conditional
        elif it.exposure is not None:
            out[k] = it.exposure
    return out


@dataclass(frozen=True, eq=False)
class ItemArrays:
    """Struct-of-arrays form of a bank (see DESIGN.md, convention 1).

    Attributes
    ----------
    ids : tuple of str, length ``I``
    family : ndarray of int8, ``(I,)`` -- :data:`adaptive.irt.mixed.DICHOTOMOUS`, ``GRADED`` or ``PARTIAL_CREDIT``
    a : ndarray, ``(I,)`` -- slopes *including* the bank's scaling D
    thresholds : ndarray, ``(I, K-1)`` -- ``b`` in column 0 for dichotomous items; NaN padding
    c, d : ndarray, ``(I,)``
    n_cat : ndarray of int, ``(I,)``
    domain : ndarray of int, ``(I,)`` -- index into ``domains`` (-1 when untagged)
    domains : tuple of str
    status : ndarray of int8, ``(I,)`` -- index into :data:`STATUSES`
    exposure : ndarray, ``(I,)`` -- Sympson-Hetter parameter, 1.0 when none is set
    exposure_conditional : ndarray, ``(I, S)`` -- conditional Sympson-Hetter parameters per θ̂ stratum
        (``S`` = 0 when no item has them; an item without them repeats its ``exposure``)
    enemy_pairs : ndarray of int, ``(E, 2)`` -- item index pairs that must not meet
    scaling : float
    """

    ids: tuple[str, ...]
    family: np.ndarray
    a: np.ndarray
    thresholds: np.ndarray
    c: np.ndarray
    d: np.ndarray
    n_cat: np.ndarray
    domain: np.ndarray = field(repr=False)
    domains: tuple[str, ...] = ()
    status: np.ndarray = field(default=None, repr=False)
    exposure: np.ndarray = field(default=None, repr=False)
    exposure_conditional: np.ndarray = field(default=None, repr=False)
    enemy_pairs: np.ndarray = field(default=None, repr=False)
    scaling: float = 1.0

    @classmethod
    def from_items(cls, items: list[Item], scaling: float = 1.0) -> ItemArrays:
        n = len(items)
        k_max = max(it.n_cat for it in items)
        thr = np.full((n, max(k_max - 1, 1)), np.nan)
        for k, it in enumerate(items):
            if it.model in DICHOTOMOUS_MODELS:
                thr[k, 0] = it.b
            else:
                thr[k, : len(it.thresholds)] = it.thresholds
        domains = tuple(sorted({it.domain for it in items if it.domain is not None}))
        dom_index = {d: k for k, d in enumerate(domains)}
        ids = tuple(it.id for it in items)
        pos = {iid: k for k, iid in enumerate(ids)}
        pairs = set()
        for k, it in enumerate(items):
            for e in it.enemies:
                if e in pos:
                    pairs.add((min(k, pos[e]), max(k, pos[e])))
        groups: dict[str, list[int]] = {}
        for k, it in enumerate(items):
            for g in it.enemy_groups:
                groups.setdefault(g, []).append(k)
        for members in groups.values():
            pairs.update((i, j) for x, i in enumerate(members) for j in members[x + 1 :])
        return cls(
            ids=ids,
            family=np.array([it.family for it in items], dtype=np.int8),
            a=np.array([it.a for it in items]) * scaling,
            thresholds=thr,
            c=np.array([it.c for it in items]),
            d=np.array([it.d for it in items]),
            n_cat=np.array([it.n_cat for it in items]),
            domain=np.array([dom_index.get(it.domain, -1) for it in items]),
            domains=domains,
            status=np.array([STATUSES.index(it.status) for it in items], dtype=np.int8),
            exposure=np.array([1.0 if it.exposure is None else it.exposure for it in items]),
            exposure_conditional=_conditional_exposure(items),
            enemy_pairs=np.array(sorted(pairs), dtype=int).reshape(-1, 2),
            scaling=float(scaling),
        )

    def __repr__(self) -> str:
        fams = ", ".join(f"{mixed.FAMILY_NAMES[int(f)]}: {int(n)}" for f, n in zip(*np.unique(self.family, return_counts=True)))
        return f"ItemArrays({self.n_items} items; {fams}; max {self.max_categories} categories; scaling {self.scaling})"

    @property
    def n_items(self) -> int:
        return len(self.ids)

    @property
    def max_categories(self) -> int:
        return int(self.n_cat.max())

    @property
    def max_score(self) -> int:
        """Highest possible raw score on all items."""
        return int((self.n_cat - 1).sum())

    def _params(self):
        return self.family, self.a, self.thresholds, self.c, self.d, self.n_cat

    def terms(self, theta) -> LogProbTerms:
        """Log-probabilities and θ-derivatives of every item, shape ``theta.shape + (I, K)``."""
        return mixed.terms(theta, *self._params())

    def prob(self, theta) -> np.ndarray:
        """Category probabilities, shape ``theta.shape + (I, K)``."""
        return self.terms(theta).prob

    def information(self, theta) -> np.ndarray:
        """Item information, shape ``theta.shape + (I,)``."""
        return self.terms(theta).information

    def test_information(self, theta) -> np.ndarray:
        """Test information (sum over items), shape ``theta.shape``."""
        return self.information(theta).sum(axis=-1)

    def expected_score(self, theta) -> np.ndarray:
        """Expected item scores, shape ``theta.shape + (I,)``."""
        return self.terms(theta).expected_score

    def log_prob_param_grad(self, theta) -> np.ndarray:
        """Gradient of the log-probabilities in the item parameters; see :func:`adaptive.irt.mixed.log_prob_param_grad`.

        Derivatives are with respect to the slope *including* the scaling D.
        """
        return mixed.log_prob_param_grad(theta, *self._params())

    def subset(self, index) -> ItemArrays:
        """The arrays of the items at ``index`` (positions), in that order."""
        idx = np.asarray(index, dtype=int)
        remap = np.full(self.n_items, -1)
        remap[idx] = np.arange(idx.size)
        pairs = remap[self.enemy_pairs] if self.enemy_pairs.size else self.enemy_pairs
        pairs = pairs[(pairs >= 0).all(axis=1)] if pairs.size else pairs
        k_max = int(self.n_cat[idx].max())
        return ItemArrays(
            ids=tuple(self.ids[i] for i in idx),
            family=self.family[idx],
            a=self.a[idx],
            thresholds=self.thresholds[idx, : max(k_max - 1, 1)],
            c=self.c[idx],
            d=self.d[idx],
            n_cat=self.n_cat[idx],
            domain=self.domain[idx],
            domains=self.domains,
            status=self.status[idx],
            exposure=self.exposure[idx],
            exposure_conditional=self.exposure_conditional[idx],
            enemy_pairs=pairs,
            scaling=self.scaling,
        )

    def tables(self, grid=None) -> GridTables:
        """Grid tables for ``grid`` (``(lo, hi, n)``, points, or ``None`` = 61 points on [-6, 6]).

        Tables are cached per grid on this object, so repeated scoring calls
        on the same bank and grid reuse them.
        """
        pts = theta_grid(grid)
        key = (pts.size, float(pts[0]), float(pts[-1]), hash(pts.tobytes()))
        cache = self.__dict__.setdefault("_table_cache", {})
        if key not in cache:
            tm = self.terms(pts)  # (Q, I, K)
            cache[key] = GridTables(
                theta=pts,
                log_prob=np.ascontiguousarray(tm.log_prob.transpose(1, 0, 2)),
                dlog_prob=np.ascontiguousarray(tm.dlog_prob.transpose(1, 0, 2)),
                d2log_prob=np.ascontiguousarray(tm.d2log_prob.transpose(1, 0, 2)),
                information=np.ascontiguousarray(tm.information.T),
            )
        return cache[key]
