"""docs/openapi.json is generated from the code; it must not drift."""

from __future__ import annotations

from pathlib import Path

from local.openapi import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_committed_openapi_document_matches_the_code() -> None:
    assert DOC.read_text() == render(), "docs/openapi.json is stale: run `make openapi`"


def test_every_public_route_is_documented() -> None:
    import json

    from sluice.api.routes import ROUTES

    paths = json.loads(render())["paths"]
    for method, path, _ in ROUTES:
        assert method.lower() in paths.get(path, {}), f"{method} {path} missing from the OpenAPI document"
