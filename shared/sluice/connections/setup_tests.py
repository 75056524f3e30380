"""Setup tests: run a service's tests on a connection's config and record what they mean.

All PASSED, SKIPPED or WARNING makes `setup_state` connected; any FAILED or JOB_FAILED makes it
incomplete when the connection was never connected, else broken.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from traceback import format_exception
from typing import Any

from sluice.config_secrets import AUTH_POINTER, Scrubber, reveal
from sluice.connections.alerts import after_setup_tests
from sluice.connections.model import Connection, SetupState, SetupTestResult
from sluice.observability import logger
from sluice.scheduler.grid import connection_next_sync_at
from sluice.sources import get_service
from sluice.sources.base import SetupTestOptions
from sluice.storage.store import Store
from sluice.timestamps import utc_now

_FAILURES = {"FAILED", "JOB_FAILED"}
RETEST_BROKEN_AFTER = timedelta(days=1)
SETUP_TESTS_REQUESTED = "Setup Tests Requested"
# Published once a run's results are stored (webhooks: connection_successful, connection_failure).
SETUP_TESTS_COMPLETED = "Setup Tests Completed"


def setup_state_after(results: list[SetupTestResult], previous: Connection) -> SetupState:
    if any(r.status in _FAILURES for r in results):
        return "broken" if previous.connected_since is not None else "incomplete"
    return "connected"


def run_tests(service_name: str, config: dict[str, Any], options: SetupTestOptions) -> list[SetupTestResult]:
    """The service's tests; a crash inside them becomes one JOB_FAILED result, never an exception.

    `config` has its secrets revealed; whatever the source echoed of them (in a message, a field name
    in the details) is scrubbed before the results go anywhere."""
    service = get_service(service_name)
    scrubber = service.scrubber(config)
    try:
        results = list(service.setup_tests(config, options))
    except Exception as exc:  # a bug in a test must not take the API call down with it
        logger.error(
            "setup tests crashed",
            extra={"service": service_name, "error": scrubber.text("".join(format_exception(exc)))},
        )
        results = [
            SetupTestResult(
                title="Running setup tests",
                status="JOB_FAILED",
                message=f"The setup tests could not run ({type(exc).__name__}); try again or contact support",
            )
        ]
    from sluice.metrics import setup_tests_ran

    setup_tests_ran(any(r.status in _FAILURES for r in results))
    return [_scrubbed(result, scrubber) for result in results]


def _scrubbed(result: SetupTestResult, scrubber: Scrubber) -> SetupTestResult:
    if not scrubber:
        return result
    return result.model_copy(
        update={
            "title": scrubber.text(result.title),
            "message": scrubber.text(result.message) if result.message else result.message,
            "details": scrubber.value(result.details),
        }
    )


def revealed_config(
    connection: Connection, decrypt: Callable[[str, dict[str, str]], dict[str, str]]
) -> dict[str, Any]:
    secrets = {k: v for k, v in connection.secrets.items() if k != AUTH_POINTER}
    return reveal(connection.config, decrypt(connection.id, secrets) if secrets else {})


def with_results(connection: Connection, results: list[SetupTestResult], now: datetime) -> Connection:
    """The connection with these results recorded and its setup state (and schedule) following them."""
    state = setup_state_after(results, connection)
    changes: dict[str, Any] = {
        "setup_tests": results,
        "setup_state": state,
        # A broken connection is tested again daily by the scheduler, until it is fixed.
        "retest_at": now + RETEST_BROKEN_AFTER if state == "broken" else None,
        **after_setup_tests(connection, results),
    }
    if state == "connected" and connection.connected_since is None:
        changes["connected_since"] = now
    updated = connection.model_copy(update=changes)
    if state != connection.setup_state:
        updated = updated.model_copy(update={"next_sync_at": connection_next_sync_at(updated, now)})
    return updated


def test_and_record(
    store: Store,
    account_id: str | None,
    connection_id: str,
    options: SetupTestOptions,
    decrypt: Callable[[str, dict[str, str]], dict[str, str]],
    config: dict[str, Any] | None = None,
) -> Connection:
    """Run the tests on the stored config (or on `config`, the plain one a caller already holds) and
    store the results. Re-reads and retries when the connection changes meanwhile."""
    connection = store.get_connection(account_id, connection_id)
    plain = config if config is not None else revealed_config(connection, decrypt)
    get_service(connection.service).check_references(store, connection.account_id, plain)
    return record(store, connection, run_tests(connection.service, plain, options))


def record(store: Store, connection: Connection, results: list[SetupTestResult]) -> Connection:
    """Store test results on the connection, re-reading it if another write came first. Results for a
    config that changed meanwhile are not stored: they no longer describe it."""
    tested = (connection.config, connection.secrets)  # a rotated secret changes its ciphertext

    def store_results(current: Connection) -> Connection | None:
        if (current.config, current.secrets) != tested:
            logger.info(
                "config changed during setup tests; results dropped", extra={"connection_id": current.id}
            )
            return None
        return with_results(current, results, utc_now())

    current, saved = store.modify_connection(None, connection.id, store_results)
    if saved is not None:
        from sluice.events import publish

        publish(
            SETUP_TESTS_COMPLETED,
            {
                "account_id": saved.account_id,
                "connection_id": saved.id,
                "group_id": saved.group_id,
                "setup_state": saved.setup_state,
                "setup_tests": [result.model_dump() for result in results],
                "connection": {
                    "service": saved.service,
                    "schema": saved.schema_name,
                    "group_id": saved.group_id,
                },
            },
        )
    return saved or current
