"""PATCH /v1/destinations/{destination_id}: change a destination's config, region or time zone."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body

from sluice.api.request_models import UpdateDestinationRequest
from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.groups import operations as groups
from sluice.observability import api_handler
from sluice.storage.store import get_store

app = make_resolver()


@app.patch("/v1/destinations/<destination_id>")
def update_destination(
    destination_id: str, request: Annotated[UpdateDestinationRequest, Body()]
) -> dict[str, Any]:
    data = groups.update_destination(current_caller(app), destination_id, request, get_store())
    return envelope(data, "Destination has been updated")


lambda_handler = api_handler(app)
