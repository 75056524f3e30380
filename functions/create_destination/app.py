"""POST /v1/destinations: give a group its destination."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from sluice.api.request_models import CreateDestinationRequest
from sluice.api.resolver import created, current_caller, make_resolver
from sluice.groups import operations as groups
from sluice.observability import logger
from sluice.storage.table import get_table

app = make_resolver()


@app.post("/v1/destinations")
def create_destination(request: Annotated[CreateDestinationRequest, Body()]) -> Response[str]:
    destination = groups.create_destination(current_caller(app), request, get_table())
    return created(destination, "Destination has been created")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
