"""GET /v1/webhooks: the account's webhooks, a page at a time."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Query

from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.observability import api_handler
from sluice.storage.store import get_store
from sluice.webhooks import operations as webhooks

app = make_resolver()


@app.get("/v1/webhooks")
def list_webhooks(
    cursor: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    page = webhooks.list_webhooks(current_caller(app), cursor, limit, get_store())
    return envelope(page, "Webhooks list retrieved successfully")


lambda_handler = api_handler(app)
