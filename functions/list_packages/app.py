"""GET /v1/connector-sdk/packages: the caller's Connector SDK packages, a page at a time."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Query

from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.observability import api_handler
from sluice.sources.connector_sdk import packages
from sluice.storage.store import get_store

app = make_resolver()


@app.get("/v1/connector-sdk/packages")
def list_packages(
    cursor: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    page = packages.list_packages(current_caller(app), cursor, limit, get_store())
    return envelope(page, "Connector SDK packages retrieved successfully")


lambda_handler = api_handler(app)
