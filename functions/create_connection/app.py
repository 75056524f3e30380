"""POST /v1/connections: create a connection."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from sluice import connections
from sluice.api import created, current_caller, make_resolver
from sluice.observability import logger
from sluice.requests_models import CreateConnectionRequest
from sluice.storage import get_table

app = make_resolver()


@app.post("/v1/connections")
def create_connection(request: Annotated[CreateConnectionRequest, Body()]) -> Response[str]:
    connection = connections.create(current_caller(app), request, get_table())
    return created(connections.to_wire(connection), "Connection has been created")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
