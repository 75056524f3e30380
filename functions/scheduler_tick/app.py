"""The scheduler tick (EventBridge schedule, every minute): claims due syncs, re-tests, data delays and
trial ends, and announces each on the bus."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from sluice.metrics import tick_ran
from sluice.observability import logger
from sluice.scheduler.tick import Scheduler
from sluice.settings import get_settings
from sluice.storage.store import get_store
from sluice.timestamps import utc_now


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = Scheduler(get_store(), get_settings().scheduler_shards).tick(utc_now())
    logger.info("tick", extra={"report": asdict(report)})
    requested = len(report.syncs_requested) + len(report.resyncs_requested)
    tick_ran(requested, report.lag_seconds, len(report.failed))
    return asdict(report)
