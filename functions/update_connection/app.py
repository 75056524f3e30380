"""PATCH /v1/connections/{connection_id}: change a connection (absent keys keep their value)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body

from sluice.api.request_models import UpdateConnectionRequest
from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.connections import operations as connections
from sluice.observability import api_handler
from sluice.storage.store import get_store

app = make_resolver()


@app.patch("/v1/connections/<connection_id>")
def update_connection(
    connection_id: str, request: Annotated[UpdateConnectionRequest, Body()]
) -> dict[str, Any]:
    connection = connections.update(current_caller(app), connection_id, request, get_store())
    return envelope(connections.as_response(connection), "Connection has been updated")


lambda_handler = api_handler(app)
