"""GET /v1/groups/{group_id}/public-key: the group's SSH public key, for the bastions its SshTunnel
connections go through (made on first use)."""

from __future__ import annotations

from typing import Any

from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.groups import ssh_keys
from sluice.observability import api_handler
from sluice.storage.store import get_store

app = make_resolver()


@app.get("/v1/groups/<group_id>/public-key")
def get_group_public_key(group_id: str) -> dict[str, Any]:
    key = ssh_keys.public_key(current_caller(app), group_id, get_store())
    return envelope({"public_key": key}, "Group public key retrieved successfully")


lambda_handler = api_handler(app)
