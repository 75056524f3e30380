"""DELETE /v1/connector-sdk/packages/{package_id}: delete a package no connection uses."""

from __future__ import annotations

from typing import Any

from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.observability import api_handler
from sluice.sources.connector_sdk import packages
from sluice.storage.store import get_store

app = make_resolver()


@app.delete("/v1/connector-sdk/packages/<package_id>")
def delete_package(package_id: str) -> dict[str, Any]:
    packages.delete_package(current_caller(app), package_id, get_store())
    return envelope(message="Package deleted successfully")


lambda_handler = api_handler(app)
