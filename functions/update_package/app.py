"""PATCH /v1/connector-sdk/packages/{package_id}: replace a package's code (multipart `file`)."""

from __future__ import annotations

from typing import Any

from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.observability import api_handler
from sluice.sources.connector_sdk import packages
from sluice.storage.store import get_store

app = make_resolver(upload_bytes=packages.MAX_PACKAGE_BYTES)


@app.patch("/v1/connector-sdk/packages/<package_id>")
def update_package(package_id: str) -> dict[str, Any]:
    data = packages.uploaded_file(app.current_event.raw_event)
    package = packages.update_package(current_caller(app), package_id, data, get_store())
    return envelope(package, "Package updated successfully")


lambda_handler = api_handler(app)
