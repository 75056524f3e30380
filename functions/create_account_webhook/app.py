"""POST /v1/webhooks/account: a webhook for every connection of the account."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body

from sluice.api.request_models import CreateWebhookRequest
from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.observability import api_handler
from sluice.storage.store import get_store
from sluice.webhooks import operations as webhooks

app = make_resolver()


@app.post("/v1/webhooks/account")
def create_account_webhook(request: Annotated[CreateWebhookRequest, Body()]) -> dict[str, Any]:
    # 200, not 201: Fivetran's answer, which go-fivetran checks for.
    webhook = webhooks.create(current_caller(app), request, None, get_store())
    return envelope(webhook, "Account webhook has been created")


lambda_handler = api_handler(app)
