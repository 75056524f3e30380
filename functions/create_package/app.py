"""POST /v1/connector-sdk/packages: upload a Connector SDK package (multipart `file`)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response

from sluice.api.resolver import created, current_caller, make_resolver
from sluice.observability import api_handler
from sluice.sources.connector_sdk import packages
from sluice.storage.store import get_store

app = make_resolver(upload_bytes=packages.MAX_PACKAGE_BYTES)


@app.post("/v1/connector-sdk/packages")
def create_package() -> Response[str]:
    data = packages.uploaded_file(app.current_event.raw_event)
    package = packages.create_package(current_caller(app), data, get_store())
    return created(package, "Package created successfully")


lambda_handler = api_handler(app)
