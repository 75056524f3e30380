"""POST /v1/connections/{id}/resync, /schemas/tables/resync and /schemas/{schema}/tables/{table}/resync
(go-fivetran's single-table path): a historical re-sync."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body

from sluice.api.request_models import ResyncBody
from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.errors import InvalidInput
from sluice.observability import api_handler
from sluice.storage.store import get_store
from sluice.sync import operations as syncs

app = make_resolver()


@app.post("/v1/connections/<connection_id>/resync")
def resync_connection(connection_id: str, request: Annotated[ResyncBody, Body()]) -> dict[str, Any]:
    message = syncs.trigger_resync(current_caller(app), connection_id, request.scope or None, get_store())
    return envelope(message=message)


@app.post("/v1/connections/<connection_id>/schemas/tables/resync")
def resync_tables(connection_id: str, scope: Annotated[dict[str, list[str]], Body()]) -> dict[str, Any]:
    if not scope:
        raise InvalidInput("Name at least one schema and its tables to re-sync")
    syncs.trigger_resync(current_caller(app), connection_id, scope, get_store())
    return envelope(message="Re-sync has been triggered successfully")


@app.post("/v1/connections/<connection_id>/schemas/<schema>/tables/<table>/resync")
def resync_table(connection_id: str, schema: str, table: str) -> dict[str, Any]:
    syncs.trigger_resync(current_caller(app), connection_id, {schema: [table]}, get_store())
    return envelope(message="Re-sync has been triggered successfully")


lambda_handler = api_handler(app)
