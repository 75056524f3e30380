"""GET /v1/connections/{connection_id}: one connection."""

from __future__ import annotations

from typing import Any

from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.connections import operations as connections
from sluice.observability import api_handler
from sluice.storage.store import get_store

app = make_resolver()


@app.get("/v1/connections/<connection_id>")
def get_connection(connection_id: str) -> dict[str, Any]:
    connection = connections.get(current_caller(app), connection_id, get_store())
    return envelope(connections.as_response(connection))


lambda_handler = api_handler(app)
