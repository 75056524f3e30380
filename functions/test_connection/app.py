"""POST /v1/connections/{id}/test: run the connection's setup tests now. No body reads as {} (Fivetran's CLI
and fivetran-mcp send none)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body

from sluice.api.request_models import SetupTestsBody
from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.config_secrets import secret_box
from sluice.connections import operations as connections
from sluice.connections.setup_tests import test_and_record
from sluice.observability import api_handler
from sluice.sources.base import SetupTestOptions
from sluice.storage.store import get_store

app = make_resolver()


@app.post("/v1/connections/<connection_id>/test")
def test_connection(connection_id: str, request: Annotated[SetupTestsBody, Body()]) -> dict[str, Any]:
    options = SetupTestOptions(
        trust_certificates=bool(request.trust_certificates),
        trust_fingerprints=bool(request.trust_fingerprints),
        timeout=connections.SETUP_TESTS_TIMEOUT,
    )
    caller = current_caller(app)
    tested = test_and_record(
        get_store(), caller.account_id, connection_id, options, secret_box().decrypt, user_id=caller.user_id
    )
    return envelope(connections.as_response(tested), "Setup tests were completed")


lambda_handler = api_handler(app)
