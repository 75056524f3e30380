"""DELETE /v1/proxy/{agent_id}: remove a proxy agent no connection uses (409 while one does)."""

from __future__ import annotations

from typing import Any

from sluice import proxy_agents
from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.observability import api_handler
from sluice.storage.store import get_store

app = make_resolver()


@app.delete("/v1/proxy/<agent_id>")
def delete_proxy_agent(agent_id: str) -> dict[str, Any]:
    proxy_agents.delete(current_caller(app), agent_id, get_store())
    return envelope(message=f"Proxy agent with id '{agent_id}' has been deleted")


lambda_handler = api_handler(app)
