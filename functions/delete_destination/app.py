"""DELETE /v1/destinations/{destination_id}: a destination its group's connections no longer use."""

from __future__ import annotations

from typing import Any

from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.groups import operations as groups
from sluice.observability import api_handler
from sluice.storage.store import get_store

app = make_resolver()


@app.delete("/v1/destinations/<destination_id>")
def delete_destination(destination_id: str) -> dict[str, Any]:
    groups.delete_destination(current_caller(app), destination_id, get_store())
    return envelope(message=f"Destination with id '{destination_id}' has been deleted")


lambda_handler = api_handler(app)
