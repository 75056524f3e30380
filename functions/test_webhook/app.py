"""POST /v1/webhooks/{webhook_id}/test: send the webhook a sample payload of one event, now."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body

from sluice.api.request_models import TestWebhookRequest
from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.observability import api_handler
from sluice.storage.store import get_store
from sluice.webhooks import operations as webhooks

app = make_resolver()


@app.post("/v1/webhooks/<webhook_id>/test")
def test_webhook(webhook_id: str, request: Annotated[TestWebhookRequest, Body()]) -> dict[str, Any]:
    # No body (go-fivetran leaves `event` out when unset) reads as {}: a sync_start test.
    result = webhooks.test(current_caller(app), webhook_id, request, get_store())
    return envelope(result, "Webhook has been tested")


lambda_handler = api_handler(app)
