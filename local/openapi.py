"""Writes the OpenAPI document of the whole API, merged from every API function's resolver.

python -m local.openapi > docs/openapi.json      (or `make openapi`)
"""

from __future__ import annotations

import json
from typing import Any

from local.functions import load_module
from local.template import api_routes

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
    document["paths"] = dict(sorted(paths.items()))
    document["components"] = {
        **document.get("components", {}),
        "schemas": dict(sorted(schemas.items())),
        "securitySchemes": {"basicAuth": {"type": "http", "scheme": "basic"}},
    }
    document["security"] = [{"basicAuth": []}]
    document["info"]["description"] = (
        "Every /v1/connections route is also served under /v1/connectors. Responses use the Fivetran "
        "envelope {code, message, data}; errors are {code, message}."
    )
    return document


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=False) + "\n"


if __name__ == "__main__":
    print(render(), end="")
