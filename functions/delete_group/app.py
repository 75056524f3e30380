"""DELETE /v1/groups/{group_id}: a group with no connections, and its destination (409 while it holds
connections)."""

from __future__ import annotations

from typing import Any

from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.groups import operations as groups
from sluice.observability import api_handler
from sluice.storage.store import get_store

app = make_resolver()


@app.delete("/v1/groups/<group_id>")
def delete_group(group_id: str) -> dict[str, Any]:
    groups.delete_group(current_caller(app), group_id, get_store())
    return envelope(message=f"Group with id '{group_id}' has been deleted")


lambda_handler = api_handler(app)
