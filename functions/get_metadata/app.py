"""GET /v1/metadata/connector-types and /v1/metadata/connector-types/{service}: the source services and
the JSON schema of each one's config."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Query

from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.observability import api_handler
from sluice.sources import metadata

app = make_resolver()


@app.get("/v1/metadata/connector-types")
def list_connector_types(
    cursor: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    current_caller(app)  # metadata is public to every key, but only to keys
    return envelope(metadata.connector_types(cursor, limit), "Connector types retrieved successfully")


@app.get("/v1/metadata/connector-types/<service>")
def get_connector_type(service: str) -> dict[str, Any]:
    current_caller(app)
    return envelope(metadata.connector_type(service), "Connector type retrieved successfully")


lambda_handler = api_handler(app)
