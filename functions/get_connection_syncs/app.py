"""GET /v1/connections/{id}/syncs and .../syncs/{sync_id} (ours): sync history and live progress."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Query

from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.observability import api_handler
from sluice.storage.store import get_store
from sluice.sync import history

app = make_resolver()


@app.get("/v1/connections/<connection_id>/syncs")
def list_connection_syncs(
    connection_id: str,
    cursor: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    page = history.list_syncs(current_caller(app), connection_id, cursor, limit, get_store())
    return envelope(page, "Syncs list retrieved successfully")


@app.get("/v1/connections/<connection_id>/syncs/<sync_id>")
def get_connection_sync(connection_id: str, sync_id: str) -> dict[str, Any]:
    return envelope(history.get_sync(current_caller(app), connection_id, sync_id, get_store()))


lambda_handler = api_handler(app)
