"""One wording for pydantic validation errors: ``field 'a.b': what is wrong``.

Banks, designs, pass standards and study files all report their problems
through :func:`problem_lines`, so a misspelled field reads the same
everywhere and says which field was probably meant (``did you mean
'max_length'?``), found among the fields valid at that place.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

__all__ = ["error_message", "problem_lines"]


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (through Optional, unions, lists, dicts, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        out += _models_in(arg)
    return out


def _field_names(model: type[BaseModel]) -> dict[str, Any]:
    return {(f.alias or name): f.annotation for name, f in model.model_fields.items()}


def fields_at(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The field names valid at ``loc`` inside ``model`` (list indexes, dict keys and union tags are skipped)."""
    models = [model]
    for seg in loc:
        inner = [sub for m in models for sub in _models_in(_field_names(m).get(str(seg)))]
        if inner:
            models = inner
    return sorted({name for m in models for name in _field_names(m)})


def error_message(error: Any, model: type[BaseModel] | None = None) -> str:
    """The text of one pydantic error; an unknown field suggests the closest known one."""
    msg = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] != "extra_forbidden" or model is None or not error["loc"]:
        return msg
    known = fields_at(model, error["loc"][:-1])
    close = difflib.get_close_matches(str(error["loc"][-1]), known, n=1, cutoff=0.6)
    if close:
        return f"unknown field; did you mean {close[0]!r}?"
    if known and len(known) <= 15:
        return f"unknown field; the fields here are {', '.join(known)}"
    return "unknown field; remove it"


def problem_lines(err: ValidationError, model: type[BaseModel] | None = None) -> list[str]:
    """``field 'a.b': message`` for every error (``(top level)`` when the whole object is wrong)."""
    return [f"field '{'.'.join(map(str, e['loc'])) or '(top level)'}': {error_message(e, model)}"
            for e in err.errors()]
