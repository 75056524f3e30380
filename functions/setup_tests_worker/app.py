"""Target of the `Setup Tests Requested` rule: runs a connection's setup tests for any producer on the
bus (the scheduler's daily re-test of broken connections, or a user's own event after rotating
credentials) and stores the results and the new setup state."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from sluice.config_secrets import secret_box
from sluice.connections.setup_tests import test_and_record
from sluice.errors import NotFound
from sluice.observability import logger
from sluice.sources.base import SetupTestOptions
from sluice.storage.store import get_store


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    detail = event.get("detail") or {}
    connection_id = str(detail.get("connection_id") or "")
    account_id = detail.get("account_id")
    options = SetupTestOptions(
        trust_certificates=bool(detail.get("trust_certificates")),
        trust_fingerprints=bool(detail.get("trust_fingerprints")),
    )
    try:
        tested = test_and_record(get_store(), account_id, connection_id, options, secret_box().decrypt)
    except NotFound:
        logger.info("setup tests requested for an unknown connection", extra={"connection_id": connection_id})
        return {"connection_id": connection_id, "setup_state": None}
    logger.info("setup tests ran", extra={"connection_id": connection_id, "setup_state": tested.setup_state})
    return {"connection_id": connection_id, "setup_state": tested.setup_state}
