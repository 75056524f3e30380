"""PATCH /v1/webhooks/{webhook_id}: change the URL, events, active flag or secret."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body

from sluice.api.request_models import UpdateWebhookRequest
from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.observability import api_handler
from sluice.storage.store import get_store
from sluice.webhooks import operations as webhooks

app = make_resolver()


@app.patch("/v1/webhooks/<webhook_id>")
def update_webhook(webhook_id: str, request: Annotated[UpdateWebhookRequest, Body()]) -> dict[str, Any]:
    webhook = webhooks.update(current_caller(app), webhook_id, request, get_store())
    return envelope(webhook, "Webhook has been updated")


lambda_handler = api_handler(app)
