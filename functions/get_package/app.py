"""GET /v1/connector-sdk/packages/{package_id}: one Connector SDK package."""

from __future__ import annotations

from typing import Any

from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.observability import api_handler
from sluice.sources.connector_sdk import packages
from sluice.storage.store import get_store

app = make_resolver()


@app.get("/v1/connector-sdk/packages/<package_id>")
def get_package(package_id: str) -> dict[str, Any]:
    package = packages.get_package(current_caller(app), package_id, get_store())
    return envelope(package, "Connector SDK package details retrieved successfully")


lambda_handler = api_handler(app)
