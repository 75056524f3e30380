"""GET /v1/proxy: the account's proxy agents, a page at a time."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Query

from sluice import proxy_agents
from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.observability import api_handler
from sluice.storage.store import get_store

app = make_resolver()


@app.get("/v1/proxy")
def list_proxy_agents(
    cursor: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    page = proxy_agents.list_page(current_caller(app), cursor, limit, get_store())
    return envelope(page, "Proxy agents list retrieved successfully")


lambda_handler = api_handler(app)
