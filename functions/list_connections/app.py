"""GET /v1/connections and GET /v1/groups/{group_id}/connections: connections, a page at a time."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Query

from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.connections import operations as connections
from sluice.observability import api_handler
from sluice.storage.store import get_store

app = make_resolver()

Cursor = Annotated[str | None, Query()]
Limit = Annotated[int, Query(ge=1, le=1000)]
Schema = Annotated[str | None, Query()]


def _page_out(page: connections.ConnectionPage) -> dict[str, Any]:
    return envelope(
        {
            "items": [connections.as_response(c) for c in page.items],
            "next_cursor": page.next_cursor,
            "nextCursor": page.next_cursor,  # dagster-fivetran reads this spelling
        },
        "Connections list retrieved successfully",
    )


@app.get("/v1/connections")
def list_connections(
    group_id: Annotated[str | None, Query()] = None,
    schema: Schema = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    page = connections.list_page(current_caller(app), group_id, schema, cursor, limit, get_store())
    return _page_out(page)


@app.get("/v1/groups/<group_id>/connections")
def list_group_connections(
    group_id: str, schema: Schema = None, cursor: Cursor = None, limit: Limit = 100
) -> dict[str, Any]:
    page = connections.list_page(current_caller(app), group_id, schema, cursor, limit, get_store())
    return _page_out(page)


lambda_handler = api_handler(app)
