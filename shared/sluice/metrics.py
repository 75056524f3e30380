"""CloudWatch metrics (Powertools, embedded metric format on stdout): every metric Sluice emits is
named here, and the alarms in template.yaml name only these (a test checks both)."""

from __future__ import annotations

from typing import Any

NAMESPACE = "Sluice"  # the template's POWERTOOLS_METRICS_NAMESPACE
SERVICE = "sluice"  # the one dimension (service), as Powertools adds it

# At each sync's end (whoever ends it: its worker, a forced sync, a cancel, a DELETE).
SYNC_ROWS_UPSERTED = "SyncRowsUpserted"
SYNC_ROWS_DELETED = "SyncRowsDeleted"
SYNC_DURATION = "SyncDuration"  # seconds from its start to its end, over all its invocations
SYNC_FAILURES = "SyncFailures"  # 1 for a sync that ended FAILURE_WITH_TASK, else 0
# At each setup test run.
SETUP_TEST_FAILURES = "SetupTestFailures"  # 1 for a run with a FAILED or JOB_FAILED test, else 0
# At each scheduler tick (every minute: a tick that stops running leaves these missing).
TICK_DUE_SYNCS = "TickDueSyncs"  # syncs and scheduled re-syncs it requested
TICK_LAG = "TickLag"  # seconds between a requested sync's due time and the tick, the latest one
TICK_FAILED_ITEMS = "TickFailedItems"  # due items it could not handle (they stay due)

EMITTED = frozenset(
    {
        SYNC_ROWS_UPSERTED,
        SYNC_ROWS_DELETED,
        SYNC_DURATION,
        SYNC_FAILURES,
        SETUP_TEST_FAILURES,
        TICK_DUE_SYNCS,
        TICK_LAG,
        TICK_FAILED_ITEMS,
    }
)


def emit(counts: dict[str, float], seconds: dict[str, float] | None = None) -> None:
    """One EMF record with these metrics (counts, and durations in seconds), written at once: nothing
    waits for a handler decorator to flush, and nothing leaks into the next invocation."""
    from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

    metrics = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
    for name, value in counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    for name, value in (seconds or {}).items():
        metrics.add_metric(name=name, unit=MetricUnit.Seconds, value=value)
    metrics.flush_metrics()


def sync_ended(status: str, run: dict[str, Any]) -> None:
    from sluice.storage.sync_store import RunProgress
    from sluice.timestamps import parse_timestamp

    progress = RunProgress.of(run)
    started, finished = parse_timestamp(run.get("started_at")), parse_timestamp(run.get("finished_at"))
    emit(
        {
            SYNC_ROWS_UPSERTED: progress.rows_upserted,
            SYNC_ROWS_DELETED: progress.rows_deleted,
            SYNC_FAILURES: 1 if status == "FAILURE_WITH_TASK" else 0,
        },
        {SYNC_DURATION: (finished - started).total_seconds()} if started and finished else None,
    )


def setup_tests_ran(failed: bool) -> None:
    emit({SETUP_TEST_FAILURES: 1 if failed else 0})


def tick_ran(syncs_requested: int, lag_seconds: float, failed_items: int) -> None:
    emit({TICK_DUE_SYNCS: syncs_requested, TICK_FAILED_ITEMS: failed_items}, {TICK_LAG: lag_seconds})
