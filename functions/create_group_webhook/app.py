"""POST /v1/webhooks/group/{group_id}: a webhook for the connections of one group."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body

from sluice.api.request_models import CreateWebhookRequest
from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.observability import api_handler
from sluice.storage.store import get_store
from sluice.webhooks import operations as webhooks

app = make_resolver()


@app.post("/v1/webhooks/group/<group_id>")
def create_group_webhook(group_id: str, request: Annotated[CreateWebhookRequest, Body()]) -> dict[str, Any]:
    webhook = webhooks.create(current_caller(app), request, group_id, get_store())
    return envelope(webhook, "Group webhook has been created")


lambda_handler = api_handler(app)
