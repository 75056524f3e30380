"""GET /v1/connections/{id}/schemas (and .../schemas/{schema}/tables/{table}/columns): the tables and
columns the connection syncs, in Fivetran's schema config shape."""

from __future__ import annotations

from typing import Any

from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.observability import api_handler
from sluice.storage.store import get_store
from sluice.sync import operations as syncs

app = make_resolver()


@app.get("/v1/connections/<connection_id>/schemas")
def get_connection_schemas(connection_id: str) -> dict[str, Any]:
    return envelope(syncs.schema_config(current_caller(app), connection_id, get_store()))


@app.get("/v1/connections/<connection_id>/schemas/<schema>/tables/<table>/columns")
def get_table_columns(connection_id: str, schema: str, table: str) -> dict[str, Any]:
    return envelope(syncs.table_columns(current_caller(app), connection_id, schema, table, get_store()))


lambda_handler = api_handler(app)
