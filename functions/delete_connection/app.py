"""DELETE /v1/connections/{connection_id}: remove a connection and everything it owns."""

from __future__ import annotations

from typing import Any

from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.connections import operations as connections
from sluice.observability import api_handler
from sluice.storage.store import get_store

app = make_resolver()


@app.delete("/v1/connections/<connection_id>")
def delete_connection(connection_id: str) -> dict[str, Any]:
    connections.delete(current_caller(app), connection_id, get_store())
    return envelope(message=f"Connection with id '{connection_id}' has been deleted")


lambda_handler = api_handler(app)
