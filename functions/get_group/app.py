"""GET /v1/groups/{group_id}: one group."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.groups import operations as groups
from sluice.observability import logger
from sluice.storage.table import get_table

app = make_resolver()


@app.get("/v1/groups/<group_id>")
def get_group(group_id: str) -> dict[str, Any]:
    return envelope(groups.get_group(current_caller(app), group_id, get_table()))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
