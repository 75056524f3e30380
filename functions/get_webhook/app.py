"""GET /v1/webhooks/{webhook_id}."""

from __future__ import annotations

from typing import Any

from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.observability import api_handler
from sluice.storage.store import get_store
from sluice.webhooks import operations as webhooks

app = make_resolver()


@app.get("/v1/webhooks/<webhook_id>")
def get_webhook(webhook_id: str) -> dict[str, Any]:
    return envelope(
        webhooks.get(current_caller(app), webhook_id, get_store()), "Webhook retrieved successfully"
    )


lambda_handler = api_handler(app)
