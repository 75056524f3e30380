"""GET /v1/connector-sdk/migration/connections: connector_sdk connections' deploy settings, a page
at a time (the SDK's `fivetran deploy` reads them once, into its options file)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Query

from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.observability import api_handler
from sluice.sources.connector_sdk import migration
from sluice.storage.store import get_store

app = make_resolver()


@app.get("/v1/connector-sdk/migration/connections")
def list_sdk_migration_connections(
    cursor: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    page = migration.list_migration_connections(current_caller(app), cursor, limit, get_store())
    return envelope(page, "Connections retrieved successfully")


lambda_handler = api_handler(app)
