"""Logging for every function: one Powertools Logger, named once, and the API functions' entry point."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service="sluice")

Handler = Callable[[dict[str, Any], "LambdaContext"], dict[str, Any]]


def api_handler(app: APIGatewayRestResolver) -> Handler:
    """The Lambda entry point of an API function: its resolver, with the request id as correlation id."""
    from aws_lambda_powertools.logging import correlation_paths

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return app.resolve(event, context)

    return lambda_handler
