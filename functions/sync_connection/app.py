"""POST /v1/connections/{id}/sync (and the legacy /force): ask for a sync."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body

from sluice.api.request_models import SyncBody
from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.observability import api_handler
from sluice.storage.store import get_store
from sluice.sync import operations as syncs

app = make_resolver()


@app.post("/v1/connections/<connection_id>/sync")
def sync_connection(connection_id: str, request: Annotated[SyncBody, Body()]) -> dict[str, Any]:
    message = syncs.trigger_sync(current_caller(app), connection_id, bool(request.force), get_store())
    return envelope(message=message)


@app.post("/v1/connections/<connection_id>/force")
def force_sync(connection_id: str) -> dict[str, Any]:
    # The legacy route: despite its name, Fivetran documents it as a plain (unforced) sync.
    message = syncs.trigger_sync(current_caller(app), connection_id, False, get_store())
    return envelope(message=message)


lambda_handler = api_handler(app)
