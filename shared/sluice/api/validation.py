"""Turns pydantic validation errors into Fivetran's 400 `InvalidInput` messages that name the field."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from sluice.errors import InvalidInput

M = TypeVar("M", bound=BaseModel)

_MISSING = {"missing", "missing_argument"}


def field_name(loc: Sequence[Any], prefix: str = "") -> str:
    parts = [str(p) for p in loc if p != "body" and not str(p).startswith("function-")]
    return prefix + ".".join(parts)


def message_for(errors: Sequence[Any], prefix: str = "") -> str:
    if not errors:
        return "Invalid request body"
    error = errors[0]
    kind = error.get("type", "")
    loc = error.get("loc", ())
    name = field_name(loc, prefix)
    if kind == "json_invalid":
        return "Request body is not valid JSON"
    if kind == "model_attributes_type" and not name:
        return "Request body must be a JSON object"
    if kind in _MISSING or (error.get("input", "") is None and kind not in {"none_required"}):
        return f"Field '{name}' is required"
    if kind == "extra_forbidden":
        return f"Field '{name}' is not supported"
    detail = error.get("msg", "is invalid")
    if detail.startswith("Value error, "):
        detail = detail[len("Value error, ") :]
    return f"Invalid value for field '{name}': {detail}"


def parse(model: type[M], data: Any, prefix: str = "") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(message_for(exc.errors(include_url=False), prefix)) from None
