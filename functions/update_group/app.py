"""PATCH /v1/groups/{group_id}: rename a group."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body

from sluice.api.request_models import UpdateGroupRequest
from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.groups import operations as groups
from sluice.observability import api_handler
from sluice.storage.store import get_store

app = make_resolver()


@app.patch("/v1/groups/<group_id>")
def update_group(group_id: str, request: Annotated[UpdateGroupRequest, Body()]) -> dict[str, Any]:
    return envelope(
        groups.update_group(current_caller(app), group_id, request, get_store()), "Group has been updated"
    )


lambda_handler = api_handler(app)
