"""Parameter tables (CSV): catR/IRT columns (a, b, c, d, b1..bk) and mirt's slope-intercept columns.

:func:`read_table` and :func:`write_table` are what :meth:`ItemBank.from_csv <adaptive.bank.ItemBank.from_csv>`
and :meth:`ItemBank.to_csv <adaptive.bank.ItemBank.to_csv>` call.
"""

from __future__ import annotations

import csv
import gc
import io
import math
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import BankValidationError
from ..irt.registry import model_spec
from ..textfiles import read_text

if TYPE_CHECKING:
    from .schema import Item, ItemBank

__all__ = ["read_table", "write_table", "META_COLUMNS"]

META_COLUMNS = ("domain", "subdomain", "code_set", "code_set_year", "status", "exposure", "n_categories",
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


def _records_from_table(header: list[str], rows: list[tuple[int, list[str]]], model: str | None):
    """Parse a parameter table into item dicts; returns (records, problems, unknown columns)."""
    cols = [h.strip().lower() for h in header]
    problems: list[str] = []
    mirt_naming = "a1" in cols
    irt_style = "a" in cols and ("b" in cols or any(len(c) > 1 and c[0] == "b" and c[1:].isdigit() for c in cols))
    if not irt_style and not mirt_naming:
        problems.append("the table needs IRT columns (a, b or b1..bk) or mirt slope-intercept columns "
                        "(a1, d or d1..dk)")
    dup = sorted({c for c in cols if cols.count(c) > 1 and c})
    if dup:
        problems.append(f"column(s) {dup} appear more than once; give every parameter one column")
    numbered: dict[str, dict[int, int]] = {}
    for pos, c in enumerate(cols):
        if len(c) > 1 and c[0] in "bd" and c[1:].isdigit():
            numbered.setdefault(c[0], {})[int(c[1:])] = pos
    known = {"id", "item", "model", "a", "b", "c", "d", "a1", "g", "u", "scaling", *META_COLUMNS}
    extras = [header[k] for k, c in enumerate(cols)
              if c not in known and not (len(c) > 1 and c[0] in "bd" and c[1:].isdigit())
              and not (c.startswith("ak") and c[2:].isdigit())]
    col = {c: k for k, c in enumerate(cols)}
    records: list[dict[str, Any]] = []
    wheres: list[str] = []
    already: list[set[str]] = []
    for r, raw in rows:
        if not any(cell.strip() for cell in raw):
            continue
        cells = {c: (raw[k].strip() if k < len(raw) else "") for c, k in col.items()}
        iid = cells.get("id") or cells.get("item") or f"I{len(records) + 1:04d}"
        where = f"line {r} (item {iid!r}), "
        if len(raw) != len(header):
            problems.append(f"{where}{len(raw)} cells but the header has {len(header)}; give one cell per column")
            continue

        reported: set[str] = set()

        def num(name, cell=None, cells=cells, where=where, reported=reported):
            text = cells.get(name, "") if cell is None else cell
            if text == "":  # the item has no such parameter; whether it needs one is checked below
                return None
            try:
                value = float(text)
            except ValueError:
                problems.append(f"{where}field '{name}': {text!r} is not a number")
                reported.add(name)
                return None
            if not math.isfinite(value):
                reported.add(name)
                problems.append(f"{where}field '{name}': {text!r} is not a finite number; give the value, or leave "
                                "the cell empty where the item's model has no such parameter")
                return None
            return value

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
        for name in META_COLUMNS:
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
        wheres.append(where)
        already.append(reported)
    if not model and "model" not in col:
        dich = [rec for rec in records if "thresholds" not in rec and "model" not in rec]
        if dich:
            guess = ("4pl" if any(rec.get("d", 1.0) < 1.0 for rec in dich)
                     else "3pl" if any(rec.get("c", 0.0) > 0.0 for rec in dich) else "2pl")
            for rec in dich:
                rec["model"] = guess
    problems += _missing_parameters(records, wheres, already)
    return records, problems, extras


def _missing_parameters(records: list[dict[str, Any]], wheres: list[str], already: list[set[str]]) -> list[str]:
    """An empty cell where the item's model needs a value is an error, never a default."""
    out = []
    for rec, where, reported in zip(records, wheres, already, strict=True):
        try:
            spec = model_spec(rec.get("model") or "2pl")
        except ValueError:
            continue  # the schema reports the unknown model
        needed = (["a"] if spec.slope != "fixed" else []) + (["b"] if spec.dichotomous else [])
        needed += (["c"] if spec.lower_asymptote else []) + (["d"] if spec.upper_asymptote else [])
        for name in needed:
            if name not in rec and name not in reported:
                out.append(f"{where}field '{name}': no value, but the {spec.name} model needs one")
    return out


@contextmanager
def gc_paused():
    """Pause Python's cyclic garbage collector while a bank's objects are built: its generational passes over
    the growing heap of item objects took half the time of reading 880,000 items (the objects hold no cycles
    to collect; reference counting frees them as usual). Nested use is fine."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def read_table(cls: type[ItemBank], path: str | Path, model: str | None = None, **bank_fields: Any) -> ItemBank:
    """Read a parameter table (the columns are described at :func:`_read_table`)."""
    with gc_paused():
        return _read_table(cls, path, model, **bank_fields)


def _read_table(cls: type[ItemBank], path: str | Path, model: str | None = None, **bank_fields: Any) -> ItemBank:
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
    reader = csv.reader(io.StringIO(read_text(path, "parameter table", BankValidationError), newline=""))
    rows = [(reader.line_num, row) for row in reader]
    if not rows:
        raise BankValidationError(["the file is empty; it needs a header row"], str(path))
    records, problems, extras = _records_from_table(rows[0][1], rows[1:], model)
    if extras:
        warnings.warn(f"{path}: ignoring unknown column(s) {extras}", stacklevel=3)
    if problems:
        raise BankValidationError(problems, str(path))
    scal = {r.pop("scaling") for r in records if "scaling" in r}
    if len(scal) > 1:
        raise BankValidationError([f"column 'scaling' must be constant, found {sorted(scal)}"], str(path))
    if scal and "scaling" not in bank_fields:
        bank_fields["scaling"] = scal.pop()
    bank_fields.setdefault("name", path.stem)
    return cls.from_dict({**bank_fields, "items": records}, source=str(path))


def write_table(bank: ItemBank, path: str | Path | None = None) -> str:
    """Write the parameter table (parameters and metadata; content and provenance stay in JSON).

    Columns: ``id, model, a, b, c, d, b1..bk`` then the metadata columns that
    any item uses. Floats are written with ``repr``, so reading the file
    back gives the same numbers bit for bit.
    """
    k_max = max((len(it.thresholds or []) for it in bank.items), default=0)
    meta = [m for m in META_COLUMNS if any(_meta_value(it, m) != "" for it in bank.items)]
    header = ["id", "model", "a", "b", "c", "d"] + [f"b{k}" for k in range(1, k_max + 1)] + meta
    if bank.scaling != 1.0:
        header.append("scaling")
    out_rows = []
    for it in bank.items:
        thr = list(it.thresholds or [])
        row = [it.id, it.model, repr(it.a), "" if it.b is None else repr(it.b), repr(it.c), repr(it.d)]
        row += [repr(t) for t in thr] + [""] * (k_max - len(thr))
        row += [_meta_value(it, m) for m in meta]
        if bank.scaling != 1.0:
            row.append(repr(bank.scaling))
        out_rows.append(row)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(out_rows)
    text = buf.getvalue()
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text
