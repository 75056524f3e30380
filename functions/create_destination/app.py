"""POST /v1/destinations: give a group its destination."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from sluice.api.request_models import CreateDestinationRequest
from sluice.api.resolver import created, current_caller, make_resolver
from sluice.groups import operations as groups
from sluice.observability import api_handler
from sluice.storage.store import get_store

app = make_resolver()


@app.post("/v1/destinations")
def create_destination(request: Annotated[CreateDestinationRequest, Body()]) -> Response[str]:
    destination = groups.create_destination(current_caller(app), request, get_store())
    return created(destination, "Destination has been created")


lambda_handler = api_handler(app)
