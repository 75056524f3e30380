"""POST /v1/destinations/{destination_id}/test: run the destination's setup tests (no body reads as {})."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body

from sluice.api.request_models import SetupTestsBody
from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.groups import operations as groups
from sluice.observability import api_handler
from sluice.storage.store import get_store

app = make_resolver()


@app.post("/v1/destinations/<destination_id>/test")
def test_destination(destination_id: str, request: Annotated[SetupTestsBody, Body()]) -> dict[str, Any]:
    data = groups.test_destination(current_caller(app), destination_id, get_store())
    return envelope(data, "Setup tests were completed")


lambda_handler = api_handler(app)
