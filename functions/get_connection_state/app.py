"""GET /v1/connections/{id}/state: the latest committed sync state."""

from __future__ import annotations

from typing import Any

from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.observability import api_handler
from sluice.storage.store import get_store
from sluice.sync import operations as syncs

app = make_resolver()


@app.get("/v1/connections/<connection_id>/state")
def get_connection_state(connection_id: str) -> dict[str, Any]:
    return envelope({"state": syncs.get_state(current_caller(app), connection_id, get_store())})


lambda_handler = api_handler(app)
