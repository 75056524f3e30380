"""Writes the OpenAPI document of the whole API, merged from every API function's resolver.

python -m local.openapi > docs/openapi.json      (or `make openapi`)
"""

from __future__ import annotations

import json
from typing import Any

from local.functions import load_module
from local.openapi_contract import RESPONSE_SCHEMAS, responses_for
from local.template import api_routes
from sluice.api.routes import ROUTES, canonical_path

TITLE = "Sluice: Fivetran-compatible Connections API"
VERSION = "1.0.0"


def build() -> dict[str, Any]:
    document: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for module_dir in sorted({r.module_dir for r in api_routes()}):
        app = getattr(load_module(module_dir), "app", None)
        if app is None:
            continue
        part = json.loads(app.get_openapi_json_schema(title=TITLE, version=VERSION))
        document = document or part
        for path, operations in part.get("paths", {}).items():
            paths.setdefault(path, {}).update(operations)
        schemas.update(part.get("components", {}).get("schemas", {}))
    # The resolvers' default responses (200 and pydantic's 422) are not what the server answers: the
    # contract table says what it does (201 on create, 400 InvalidInput, 404, 409, the envelope).
    for method, path, _ in ROUTES:
        operation = paths[path][method.lower()]
        operation["responses"] = responses_for(method, path)
        _body_optional_when_empty_passes(operation, schemas)
    paths.update(_aliases(paths))
    for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(name, None)
    document["paths"] = dict(sorted(paths.items()))
    document["components"] = {
        **document.get("components", {}),
        "schemas": dict(sorted({**schemas, **RESPONSE_SCHEMAS}.items())),
        "securitySchemes": {"basicAuth": {"type": "http", "scheme": "basic"}},
    }
    document["security"] = [{"basicAuth": []}]
    document["info"]["description"] = (
        "Every /v1/connections route is also served under /v1/connectors (listed too). Responses use "
        "the Fivetran envelope {code, message, data}; actions answer {code, message}; errors are "
        "{code, message} with 400 InvalidInput for bad input (never 422). Create answers 201, every other "
        "success 200. Not listed per operation: 405 MethodNotAllowed, 413 PayloadTooLarge, 415 "
        "UnsupportedMediaType (a body that is not JSON) and 429 TooManyRequests with Retry-After."
    )
    return document


def _body_optional_when_empty_passes(operation: dict[str, Any], schemas: dict[str, Any]) -> None:
    """A missing or empty body is read as {} (API.md): the body is required only when {} is refused."""
    body = operation.get("requestBody")
    if not body:
        return
    schema = body["content"]["application/json"]["schema"]
    options = schema.get("anyOf") or []
    if {"type": "null"} in options:  # an optional model (`Model | None`): no body at all is fine
        body["required"] = False
        return
    name = str(schema.get("$ref", "")).rsplit("/", 1)[-1]
    # An inline schema (a free-form map, such as the table-resync scope) needs at least one entry.
    body["required"] = bool(schemas[name].get("required")) if name else True


def alias_path(path: str) -> str | None:
    """The /v1/connectors spelling of a /v1/connections route (None when it has none)."""
    parts = path.split("/")
    positions = [i for i in (2, 4) if len(parts) > i and parts[i] == "connections"]
    if positions == [4] and parts[2] != "groups":
        positions = []
    if not positions:
        return None
    for i in positions:
        parts[i] = "connectors"
    aliased = "/".join(parts)
    return aliased if canonical_path(aliased) == (path, True) else None


def _aliases(paths: dict[str, Any]) -> dict[str, Any]:
    """Every /v1/connections operation again under /v1/connectors, with its own operationId."""
    out: dict[str, Any] = {}
    for path, operations in paths.items():
        aliased = alias_path(path)
        if aliased is None:
            continue
        out[aliased] = {
            method: {
                **operation,
                "summary": f"{method.upper()} {aliased} (alias of {path})",
                "operationId": operation["operationId"] + "_connectors_alias",
            }
            for method, operation in operations.items()
        }
    return out


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=False) + "\n"


if __name__ == "__main__":
    print(render(), end="")
