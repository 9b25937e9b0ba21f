"""The item-bank schema: items, content, provenance, blueprints and the bank, validated at the edge.

Every problem of a bank is reported at once, each naming the item (id and position) and the field.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from contextvars import ContextVar
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from ..exceptions import BankValidationError
from ..fielderrors import error_message
from ..irt.arrays import GridTables, ItemArrays
from ..irt.registry import Family, canonical_model, model_spec
from ..textfiles import read_text
from .compile import compile_items
from .constants import ModelName, Status
from .parts import _FROZEN, ItemContent, ParameterRecord, Provenance
from .subscores import SubscoreModel, subscore_problems
from .table import gc_paused, read_table, write_table

__all__ = ["Item", "ItemBank", "ItemContent", "Provenance", "Blueprint", "BlueprintDomain", "canonical_fingerprint"]

def _model_name(value: Any) -> Any:
    """Model names in any case or by an alias (``"GRM"``, ``"2PL"``) become canonical; others fail with the names."""
    return canonical_model(value) if isinstance(value, str) else value
#: set while ItemBank.__init__ validates: the cross-item checks have run already
_CHECKED: ContextVar[bool] = ContextVar("bank_cross_item_checked", default=False)
#: set while ItemBank.__init__ hands pydantic items it has just checked (each item's rules run once, not twice)
_ITEMS_CHECKED: ContextVar[bool] = ContextVar("bank_items_checked", default=False)


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
        problems = _identifier_problems("name", self.name)
        if problems:
            raise ValueError("; ".join(problems))
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


#: plausible parameter ranges (a slope above SLOPE_MAX or a location beyond ±LOCATION_MAX is a data error,
#: not an item: such values overflow or make an item no estimate can reach); see the README's RELIABILITY section
SLOPE_MAX = 20.0
LOCATION_MAX = 20.0
#: characters an identifier (item id, domain, enemy group) may not contain: the parameter table's list
#: separators (enemies = "Q1;Q2", also "|") and control characters; nor may it start or end with white space,
#: which a CSV reader cannot tell from padding. Refused rather than lost on a round trip.
_ID_FORBIDDEN = frozenset(";|") | frozenset(chr(c) for c in range(32)) | {chr(127)}


def _identifier_problems(field: str, value: str | None) -> list[str]:
    if value is None:
        return []
    out = []
    if value != value.strip():
        out.append(f"field '{field}': {value!r} starts or ends with white space; remove it (a parameter table "
                   "cannot keep it)")
    bad = sorted({ch for ch in value if ch in _ID_FORBIDDEN})
    if bad:
        shown = ", ".join(repr(ch) for ch in bad)
        out.append(f"field '{field}': {value!r} contains {shown}; identifiers may not contain ';', '|' or control "
                   "characters")
    return out


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
    model: Annotated[ModelName, BeforeValidator(_model_name)] = "2pl"
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
    history: list[ParameterRecord] = Field(default_factory=list, description="earlier parameters and statuses, "
                                           "oldest first (a promotion or recalibration appends one)")

    @model_validator(mode="after")
    def _check(self) -> Item:
        if _ITEMS_CHECKED.get():  # an instance ItemBank.__init__ validated a moment ago (pydantic re-runs this)
            return self
        problems = _parameter_problems(self)
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def family(self) -> Family:
        return model_spec(self.model).family

    @property
    def n_cat(self) -> int:
        return 2 if model_spec(self.model).dichotomous else len(self.thresholds or []) + 1


def _parameter_problems(item: Item) -> list[str]:
    """Every broken parameter rule of one item, as ``field 'x': what, what to do``."""
    p: list[str] = []
    m = item.model
    spec = model_spec(m)
    if not _finite(item.a) or item.a <= 0:
        p.append(f"field 'a': slope must be a finite number > 0, got {item.a!r}")
    elif item.a > SLOPE_MAX:
        p.append(f"field 'a': slope {item.a!r} is implausible (above {SLOPE_MAX:g}); check the value and its scale")
    elif spec.slope == "fixed" and item.a != 1.0:
        free_slope = "1pl" if m == "rasch" else "gpcm"
        p.append(f"field 'a': the {m} model fixes a = 1, got {item.a!r}; use model '{free_slope}'")
    for name in ("c", "d"):
        v = getattr(item, name)
        if not _finite(v) or not 0.0 <= v <= 1.0:
            p.append(f"field '{name}': must be in [0, 1], got {v!r}")
    if _finite(item.c) and _finite(item.d) and item.c >= item.d:
        p.append(f"field 'c': lower asymptote c = {item.c!r} must be below the upper asymptote d = {item.d!r}")
    if spec.dichotomous:
        if item.b is None or not _finite(item.b):
            p.append(f"field 'b': the {m} model needs a finite difficulty b, got {item.b!r}")
        elif abs(item.b) > LOCATION_MAX:
            p.append(f"field 'b': difficulty {item.b!r} is implausible (beyond ±{LOCATION_MAX:g}); check the value")
        if item.thresholds:
            p.append(f"field 'thresholds': a {m} item has no thresholds; give 'b' or change the model")
        if not spec.lower_asymptote and item.c != 0.0:
            p.append(f"field 'c': the {m} model has c = 0, got {item.c!r}; use model '3pl'")
        if not spec.upper_asymptote and item.d != 1.0:
            p.append(f"field 'd': the {m} model has d = 1, got {item.d!r}; use model '4pl'")
        if item.n_categories not in (None, 2):
            p.append(f"field 'n_categories': a {m} item has 2 categories, got {item.n_categories}")
    else:
        thr = item.thresholds or []
        if not thr:
            p.append(f"field 'thresholds': the {m} model needs at least one threshold")
        elif not all(_finite(t) for t in thr):
            p.append(f"field 'thresholds': all thresholds must be finite numbers, got {thr}")
        elif any(abs(t) > LOCATION_MAX for t in thr):
            p.append(f"field 'thresholds': {thr} has values beyond ±{LOCATION_MAX:g}, which is implausible")
        elif spec.family is Family.GRADED and any(t1 >= t2 for t1, t2 in zip(thr, thr[1:])):
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
    for field in ("id", "domain", "subdomain", "code_set"):
        p += _identifier_problems(field, getattr(item, field))
    for field in ("enemies", "enemy_groups"):
        for value in getattr(item, field):
            p += _identifier_problems(field, value)
    return p


def _cross_item_problems(records: list[dict], blueprint: Blueprint | None) -> list[str]:
    """Problems that need the whole bank: duplicate ids, unknown enemies, domains outside the blueprint.

    ``records`` are the items as dicts (possibly invalid ones), in bank order.
    """
    problems = []
    ids = [str(r.get("id")) if isinstance(r, dict) else None for r in records]
    counts = Counter(i for i in ids if i is not None)
    seen: set[str] = set()
    for iid in ids:
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
        if isinstance(enemies, (list, tuple)):  # entries that are not strings are reported by the item's own check
            unknown = [e for e in enemies if isinstance(e, str) and e not in known]
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
            elif isinstance(dom, str) and dom not in domains:
                problems.append(
                    f"item {ids[pos]!r} (position {pos}), field 'domain': {dom!r} is not a blueprint domain "
                    f"({sorted(domains)}); fix the tag or add the domain to the blueprint"
                )
    return problems


def _subscore_model(raw, items) -> tuple[list[str], SubscoreModel | None]:
    """The subscore model, validated once, with its own problems and those that tie it to the items (when these
    are valid)."""
    if raw is None:
        return [], None
    try:
        model = raw if isinstance(raw, SubscoreModel) else SubscoreModel.model_validate(raw)
    except ValidationError as err:
        return _format_pydantic(err, lambda loc: ("subscores, ", loc), SubscoreModel), None
    return ([] if items is None else subscore_problems(model, items)), model


def _format_pydantic(err: ValidationError, prefix_of, model: type[BaseModel]) -> list[str]:
    """Turn pydantic errors into one line per problem, naming the item and field."""
    out = []
    for e in err.errors():
        loc = list(e["loc"])
        prefix, rest = prefix_of(loc)
        msg = error_message(e, model)
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
    scaling: float = Field(1.0, gt=0.0, le=5.0, allow_inf_nan=False,
                           description="D in exp(-D a (theta - b)); 1.0 logistic, 1.702 normal-ogive")
    blueprint: Blueprint | None = None
    items: list[Item] = Field(min_length=1)
    subscores: SubscoreModel | None = Field(None, description="the items calibrated with each content domain as "
                                            "a factor: domain subscores in the candidate's report")

    def __init__(self, /, **data: Any):
        with gc_paused():
            self._validate_and_init(data)

    def _validate_and_init(self, data: dict) -> None:
        # Validate items one by one so that every problem is reported, not only the first.
        records = data.get("items")
        if isinstance(records, list):
            problems = []
            validated: list[Item] = []
            for pos, rec in enumerate(records):
                if isinstance(rec, Item):  # built elsewhere (perhaps with model_construct): its rules once more
                    problems += [f"item {rec.id!r} (position {pos}), {line}" for line in _parameter_problems(rec)]
                    validated.append(rec)
                    continue
                try:
                    validated.append(Item.model_validate(rec))
                except ValidationError as err:
                    iid = rec.get("id") if isinstance(rec, dict) else None
                    problems += _format_pydantic(
                        err, lambda loc, i=iid, p=pos: (f"item {i!r} (position {p}), ", loc), Item)
            dicts = [r.model_dump() if isinstance(r, Item) else r for r in records]
            blueprint = data.get("blueprint")
            try:
                bp = Blueprint.model_validate(blueprint) if blueprint is not None else None
            except ValidationError as err:
                problems += _format_pydantic(err, lambda loc: ("blueprint, ", loc), Blueprint)
                bp = None
            problems += _cross_item_problems(dicts, bp)
            sub_problems, subscores = _subscore_model(data.get("subscores"), validated if not problems else None)
            problems += sub_problems
            if problems:
                raise BankValidationError(problems)
            # each item validated once: pydantic keeps model instances
            data = {**data, "items": validated} | ({"subscores": subscores} if subscores is not None else {})
        token = _CHECKED.set(isinstance(records, list))  # cross-item checks done above: once is enough
        items_token = _ITEMS_CHECKED.set(isinstance(records, list))
        try:
            super().__init__(**data)
        except ValidationError as err:
            def where(loc):
                if loc and loc[0] == "items" and len(loc) > 1 and isinstance(loc[1], int):
                    return f"item at position {loc[1]}, ", loc[2:]
                return "bank, ", loc
            raise BankValidationError(_format_pydantic(err, where, ItemBank)) from None
        finally:
            _CHECKED.reset(token)
            _ITEMS_CHECKED.reset(items_token)

    @model_validator(mode="after")
    def _check_bank(self) -> ItemBank:
        if _CHECKED.get():
            return self
        # a bank validated without __init__ (model_validate, or nested in another model)
        problems = _cross_item_problems([it.model_dump() for it in self.items], self.blueprint)
        problems += subscore_problems(self.subscores, self.items)
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

    def with_subscores(self, model, method: Literal["eap", "map"] = "eap") -> ItemBank:
        """This bank with a subscore model (:mod:`adaptive.bank.subscores`): ``model`` a
        :class:`~adaptive.bank.multidim.MultidimBank` of these items with a factor per content domain (e.g.
        ``fit.bank`` of ``calibrate(X, factors={domain: [item ids]})``), or None to drop it."""
        from .multidim import MultidimBank

        if model is not None and not isinstance(model, MultidimBank):
            raise BankValidationError([f"subscores: give a MultidimBank (e.g. fit.bank of calibrate(X, factors="
                                       f"{{domain: [item ids]}})), not {type(model).__name__}"])
        if method not in ("eap", "map"):
            raise BankValidationError([f"subscores, field 'method': {method!r}; use 'eap' or 'map'"])
        sub = None if model is None else SubscoreModel.from_bank(model, method)
        return ItemBank(**{**self.model_dump(exclude={"subscores"}), "subscores": sub})

    def fingerprint(self) -> str:
        """Short SHA-256 (16 hex digits) of the bank's canonical JSON: equal banks, equal fingerprints."""
        return canonical_fingerprint(self)

    # ------------------------------------------------------------------ numerics
    def compile(self) -> ItemArrays:
        """Struct-of-arrays view for the numerics (computed once per bank)."""
        return self._arrays

    @cached_property
    def _arrays(self) -> ItemArrays:
        return compile_items(self.items, scaling=self.scaling)

    def tables(self, grid=None) -> GridTables:
        """Grid tables (log-probabilities, information) of the compiled bank; see :meth:`ItemArrays.tables`."""
        return self.compile().tables(grid)

    # ------------------------------------------------------------------ JSON
    @classmethod
    def from_dict(cls, data: dict, source: str | None = None) -> ItemBank:
        """Validate a bank from a dict, reporting every problem with ``source`` in the message."""
        if not isinstance(data, dict):
            raise BankValidationError([f"the bank must be a JSON object with an 'items' list, got "
                                       f"{type(data).__name__}"], source)
        try:
            return cls(**data)
        except BankValidationError as err:
            raise BankValidationError(err.problems, source) from None

    @classmethod
    def load(cls, path: str | Path) -> ItemBank:
        """Read a bank from ``.json`` or ``.csv``, or from a pool directory's ``bank.json`` (with the directory's
        ``subscores.json``, a :class:`~adaptive.bank.multidim.MultidimBank` by domain, when it has one)."""
        p = Path(path)
        sub = None
        if p.is_dir():
            sub = p / "subscores.json"
            p = p / "bank.json"
        if not p.exists():
            raise BankValidationError([f"bank file {str(p)!r} does not exist; give a .json or .csv bank, or a "
                                       "directory holding bank.json"])
        bank = cls.from_csv(p) if p.suffix.lower() == ".csv" else cls.from_json(p)
        if sub is not None and sub.exists():
            from .multidim import MultidimBank

            try:
                bank = bank.with_subscores(MultidimBank.read_json(sub))
            except BankValidationError as err:
                raise BankValidationError(err.problems, str(sub)) from None
        return bank

    @classmethod
    def from_json(cls, path: str | Path) -> ItemBank:
        """Read a bank written by :meth:`to_json` (or any JSON matching :meth:`json_schema`)."""
        path = Path(path)
        text = read_text(path, "bank", BankValidationError)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise BankValidationError(
                [f"not valid JSON at line {err.lineno}, column {err.colno}: {err.msg}"], str(path)
            ) from None
        except RecursionError:
            raise BankValidationError(["the JSON is nested too deeply to be a bank"], str(path)) from None
        return cls.from_dict(data, source=str(path))

    def to_json(self, path: str | Path | None = None, indent: int | None = 2) -> str:
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
        """Read a parameter table; see :func:`adaptive.bank.table.read_table` for the columns."""
        return read_table(cls, path, model, **bank_fields)

    def to_csv(self, path: str | Path | None = None) -> str:
        """Write the parameter table; see :func:`adaptive.bank.table.write_table`."""
        return write_table(self, path)


def canonical_fingerprint(model: BaseModel) -> str:
    """Short SHA-256 of a pydantic model's canonical JSON (defaults left out, so a new default field
    does not change the fingerprint of what was stored before it)."""
    return hashlib.sha256(model.model_dump_json(exclude_defaults=True).encode()).hexdigest()[:16]
