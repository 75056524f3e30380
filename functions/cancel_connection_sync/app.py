"""POST /v1/connections/{id}/syncs/{sync_id}/cancel and .../sync/cancel (ours): stop a running sync at
its next batch."""

from __future__ import annotations

from typing import Any

from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.observability import api_handler
from sluice.storage.store import get_store
from sluice.sync import history

app = make_resolver()


@app.post("/v1/connections/<connection_id>/syncs/<sync_id>/cancel")
def cancel_connection_sync(connection_id: str, sync_id: str) -> dict[str, Any]:
    ended = history.cancel_sync(current_caller(app), connection_id, sync_id, get_store())
    return envelope(ended, f"Sync with id '{sync_id}' has been cancelled")


@app.post("/v1/connections/<connection_id>/sync/cancel")
def cancel_running_connection_sync(connection_id: str) -> dict[str, Any]:
    ended = history.cancel_running_sync(current_caller(app), connection_id, get_store())
    return envelope(ended, f"Sync with id '{ended['id']}' has been cancelled")


lambda_handler = api_handler(app)
