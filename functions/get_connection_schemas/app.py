"""GET /v1/connections/{id}/schemas (and .../schemas/{schema}/tables/{table}/columns): the connection's
schema config, in Fivetran's shape."""

from __future__ import annotations

from typing import Any

from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.observability import api_handler
from sluice.schema_config import operations as schemas
from sluice.storage.store import get_store

app = make_resolver()


@app.get("/v1/connections/<connection_id>/schemas")
def get_connection_schemas(connection_id: str) -> dict[str, Any]:
    data = schemas.schema_config(current_caller(app), connection_id, get_store())
    return envelope(data, "Schema configuration retrieved successfully")


@app.get("/v1/connections/<connection_id>/schemas/<schema>/tables/<table>/columns")
def get_table_columns(connection_id: str, schema: str, table: str) -> dict[str, Any]:
    data = schemas.table_columns(current_caller(app), connection_id, schema, table, get_store())
    return envelope(data, "Column configuration retrieved successfully")


lambda_handler = api_handler(app)
