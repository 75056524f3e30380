"""PATCH /v1/connections/{id}/state: replace the whole state of a paused connection."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body

from sluice.api.request_models import StateBody
from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.observability import api_handler
from sluice.storage.store import get_store
from sluice.sync import operations as syncs

app = make_resolver()


@app.patch("/v1/connections/<connection_id>/state")
def update_connection_state(connection_id: str, request: Annotated[StateBody, Body()]) -> dict[str, Any]:
    state = syncs.replace_state(current_caller(app), connection_id, request.state, get_store())
    return envelope({"state": state}, "Connection state has been updated")


lambda_handler = api_handler(app)
