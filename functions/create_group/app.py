"""POST /v1/groups: create a group."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from sluice.api.request_models import CreateGroupRequest
from sluice.api.resolver import created, current_caller, make_resolver
from sluice.groups import operations as groups
from sluice.observability import api_handler
from sluice.storage.store import get_store

app = make_resolver()


@app.post("/v1/groups")
def create_group(request: Annotated[CreateGroupRequest, Body()]) -> Response[str]:
    group = groups.create_group(current_caller(app), request, get_store())
    return created(group, "Group has been created")


lambda_handler = api_handler(app)
