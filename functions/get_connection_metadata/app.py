"""GET /v1/metadata/connectors/{connection_id}/tables and .../columns: the legacy metadata routes
(Airflow's OpenLineage support and fivetran-mcp read them)."""

from __future__ import annotations

from typing import Any

from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.connections import legacy_metadata
from sluice.observability import api_handler
from sluice.storage.store import get_store

app = make_resolver()


@app.get("/v1/metadata/connectors/<connection_id>/tables")
def get_connection_tables(connection_id: str) -> dict[str, Any]:
    return envelope(legacy_metadata.tables(current_caller(app), connection_id, get_store()))


@app.get("/v1/metadata/connectors/<connection_id>/columns")
def get_connection_columns(connection_id: str) -> dict[str, Any]:
    return envelope(legacy_metadata.columns(current_caller(app), connection_id, get_store()))


lambda_handler = api_handler(app)
