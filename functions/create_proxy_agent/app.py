"""POST /v1/proxy: register a proxy agent (an HTTP CONNECT proxy at `proxy_url`, ours); 201 with its
auth token, shown this once."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from sluice import proxy_agents
from sluice.api.request_models import CreateProxyAgentRequest
from sluice.api.resolver import created, current_caller, make_resolver
from sluice.observability import api_handler
from sluice.storage.store import get_store

app = make_resolver()


@app.post("/v1/proxy")
def create_proxy_agent(request: Annotated[CreateProxyAgentRequest, Body()]) -> Response[str]:
    agent = proxy_agents.create(
        current_caller(app), request.display_name, request.group_region, request.proxy_url, get_store()
    )
    return created(agent, "Proxy agent has been created")


lambda_handler = api_handler(app)
