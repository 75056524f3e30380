"""GET /v1/groups/{group_id}: one group."""

from __future__ import annotations

from typing import Any

from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.groups import operations as groups
from sluice.observability import api_handler
from sluice.storage.store import get_store

app = make_resolver()


@app.get("/v1/groups/<group_id>")
def get_group(group_id: str) -> dict[str, Any]:
    return envelope(groups.get_group(current_caller(app), group_id, get_store()))


lambda_handler = api_handler(app)
