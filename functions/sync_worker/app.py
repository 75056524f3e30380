"""Target of the `Sync Requested` rule: runs one sync (or its continuation) for a connection."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from sluice.config_secrets import secret_box
from sluice.observability import logger
from sluice.storage.store import get_store
from sluice.sync.engine import SyncEngine
from sluice.sync.events import SyncRequest


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = SyncRequest.from_detail(event["detail"])
    engine = SyncEngine(get_store(), decrypt=secret_box().decrypt)
    # The event id survives EventBridge's and Lambda's retries, so a retried run resumes its own lease.
    result = engine.run(
        request,
        sync_id=str(event["id"]),
        remaining_seconds=lambda: context.get_remaining_time_in_millis() / 1000,
    )
    summary = {
        "connection_id": request.connection_id,
        "sync_id": request.sync_id or str(event["id"]),
        **{k: v for k, v in asdict(result).items() if k not in ("columns", "alert", "progress")},
    }
    logger.info("sync ended", extra={"result": summary})
    return summary
