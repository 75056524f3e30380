"""Target of the webhook rule: delivers one bus event to the webhooks that asked for it. A webhook
that does not take it fails the invocation, so the event is retried (to that webhook only) and then
dead-lettered; nothing here can slow a sync or an API call."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from sluice.observability import logger
from sluice.storage.store import get_store
from sluice.webhooks.operations import deliver_bus_event


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    delivered = deliver_bus_event(event, get_store())
    return {"event_id": event.get("id"), "delivered": delivered}
