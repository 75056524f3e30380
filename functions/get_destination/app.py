"""GET /v1/destinations/{destination_id}: a group's destination (its id is the group id)."""

from __future__ import annotations

from typing import Any

from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.groups import operations as groups
from sluice.observability import api_handler
from sluice.storage.store import get_store

app = make_resolver()


@app.get("/v1/destinations/<destination_id>")
def get_destination(destination_id: str) -> dict[str, Any]:
    return envelope(groups.get_destination(current_caller(app), destination_id, get_store()))


lambda_handler = api_handler(app)
