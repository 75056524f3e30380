"""GET /v1/connections/{connection_id}: one connection."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.connections import operations as connections
from sluice.observability import logger
from sluice.storage.table import get_table

app = make_resolver()


@app.get("/v1/connections/<connection_id>")
def get_connection(connection_id: str) -> dict[str, Any]:
    connection = connections.get(current_caller(app), connection_id, get_table())
    return envelope(connections.to_wire(connection))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
