"""Turns pydantic validation errors into Fivetran's 400 `InvalidInput` messages that name the field, and
refuses requests past DynamoDB's limits (item size, nesting) before anything is written."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from sluice.errors import InvalidInput, PayloadTooLarge

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


# ---- DynamoDB's limits, checked before anything is written ---------------------------------------------
#
# The one place for them: a request whose data storage could not write is refused here, whole, instead
# of failing (or half-writing) in storage.

# DynamoDB's item size limit (400 KB: attribute names and values, as stored), read as 400,000 bytes:
# AWS measures its limit a little above that, moto enforces 405,000; below both, a write never fails.
MAX_ITEM_BYTES = 400_000
# DynamoDB's nesting limit for documents (32 levels); a request body may not nest deeper either.
MAX_JSON_DEPTH = 32

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


def json_depth(text: str) -> int:
    """How deeply a JSON text nests (0 for a scalar), counted without parsing it: a parser would recurse."""
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def check_json_depth(text: str) -> None:
    if json_depth(text) > MAX_JSON_DEPTH:
        raise InvalidInput(f"Request body nests deeper than {MAX_JSON_DEPTH} levels (DynamoDB's limit)")


def _value_size(value: dict[str, Any]) -> int:
    """Bytes of one attribute value in DynamoDB's wire form ({"S": ...}, {"M": {...}}, ...)."""
    ((kind, data),) = value.items()
    if kind == "S":
        return len(data.encode())
    if kind == "N":
        digits = len(data.lstrip("-").replace(".", "").strip("0")) or 1
        return (digits + 1) // 2 + 1
    if kind == "B":
        return len(bytes(data))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(_value_size({kind[0]: item}) for item in data)
    if kind == "L":
        return 3 + sum(1 + _value_size(item) for item in data)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + _value_size(item) for name, item in data.items())
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_size(item: dict[str, Any]) -> int:
    """The size DynamoDB counts for an item, given in the form storage writes (`to_dynamo`)."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def check_item_size(item: dict[str, Any], what: str, reserve: int = 0) -> None:
    """Refuse `what` (e.g. "The connection") when its item, as storage will write it (plus `reserve`
    bytes for attributes the caller does not build), exceeds the limit."""
    size = item_size(item) + reserve
    if size > MAX_ITEM_BYTES:
        raise PayloadTooLarge(
            f"{what} would take {size:,} bytes in DynamoDB, over its item size limit of "
            f"{MAX_ITEM_BYTES:,} bytes (400 KB): make the config or state smaller"
        )
