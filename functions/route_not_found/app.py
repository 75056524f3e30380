"""Catch-all for paths and methods no other function serves: 404 or 405 in the Fivetran envelope."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from sluice.api.resolver import make_resolver
from sluice.observability import logger

app = make_resolver()  # no routes: every request reaches the resolver's 404/405 handler


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
