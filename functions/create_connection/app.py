"""POST /v1/connections: create a connection."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from sluice.api.request_models import CreateConnectionRequest
from sluice.api.resolver import created, current_caller, make_resolver
from sluice.connect_card import cards as connect_card
from sluice.connections import operations as connections
from sluice.observability import api_handler
from sluice.storage.store import get_store

app = make_resolver()


@app.post("/v1/connections")
def create_connection(request: Annotated[CreateConnectionRequest, Body()]) -> Response[str]:
    card_config = connect_card.checked_config(request.connect_card_config)  # a bad one is 400 before creating
    connection = connections.create(current_caller(app), request, get_store())
    data = connections.as_response(connection)
    if card_config is not None:
        base_url = connect_card.request_base_url(app.current_event.raw_event)
        data |= connect_card.card_for(connection, current_caller(app).user_id, card_config, base_url)
    return created(data, "Connection has been created")


lambda_handler = api_handler(app)
