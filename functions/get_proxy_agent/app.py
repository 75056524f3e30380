"""GET /v1/proxy/{agent_id}: a proxy agent and the connections that use it (never its token)."""

from __future__ import annotations

from typing import Any

from sluice import proxy_agents
from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.observability import api_handler
from sluice.storage.store import get_store

app = make_resolver()


@app.get("/v1/proxy/<agent_id>")
def get_proxy_agent(agent_id: str) -> dict[str, Any]:
    agent = proxy_agents.details(current_caller(app), agent_id, get_store())
    return envelope(agent, "Proxy agent retrieved successfully")


lambda_handler = api_handler(app)
