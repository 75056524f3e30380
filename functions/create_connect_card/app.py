"""POST /v1/connections/{connection_id}/connect-card: a link to the hosted setup page of a connection."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body

from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.connect_card import cards as connect_card
from sluice.connect_card.cards import ConnectCardRequest
from sluice.observability import api_handler
from sluice.storage.store import get_store

app = make_resolver()


@app.post("/v1/connections/<connection_id>/connect-card")
def create_connect_card(connection_id: str, request: Annotated[ConnectCardRequest, Body()]) -> dict[str, Any]:
    card = connect_card.create_card(
        current_caller(app),
        connection_id,
        request.effective_config(),
        get_store(),
        connect_card.request_base_url(app.current_event.raw_event),
    )
    return envelope(card, "Connect card has been created")


lambda_handler = api_handler(app)
