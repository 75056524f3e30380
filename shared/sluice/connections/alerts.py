"""A connection's `status.tasks` and `status.warnings` (Fivetran's Alert: code, message, details):
what the user must do about it, from why its last sync or setup tests failed.

Rules: a failed sync sets one task (its reason); a sync stopped by the source's rate limit sets a
warning; a failed setup test sets a task, a WARNING result a warning; the next successful sync clears
both lists; setup tests replace only their own alerts. Details are messages already scrubbed of the
connection's secrets.
"""

from __future__ import annotations

from typing import Any

from sluice.connections.model import Alert, Connection, SetupTestResult

SETUP_TEST_FAILED = "setup_test_failed"
SETUP_TEST_WARNING = "setup_test_warning"
SOURCE_RATE_LIMITED = "source_rate_limited"
SYNC_FAILED = "sync_failed"
_SETUP_CODES = (SETUP_TEST_FAILED, SETUP_TEST_WARNING)


def _sync_task_kinds() -> tuple[tuple[type[BaseException], str, str], ...]:
    """Each failure class with its task code and label, most specific first (the first match wins)."""
    from sluice.destinations import DestinationError, DestinationLocked
    from sluice.outbound import (
        CertificateNotTrusted,
        ConnectFailed,
        HostNotFound,
        RefusedAddress,
        RequestTimedOut,
        ResponseTooLarge,
    )
    from sluice.sources.base import SourceAuthError, SourceError

    return (
        (CertificateNotTrusted, "certificate_not_trusted", "Untrusted Certificate"),
        (SourceAuthError, "source_credentials_refused", "Source Credentials Refused"),
        (RefusedAddress, "source_address_refused", "Source Address Refused"),
        (HostNotFound, "source_host_not_found", "Source Host Not Found"),
        (RequestTimedOut, "source_timed_out", "Source Timed Out"),
        (ConnectFailed, "source_unreachable", "Source Unreachable"),
        (ResponseTooLarge, "source_response_too_large", "Source Response Too Large"),
        (SourceError, "source_error", "Source Error"),
        (DestinationLocked, "destination_locked", "Destination Locked"),
        (DestinationError, "destination_error", "Destination Error"),
    )


def sync_task(exc: BaseException, details: str) -> Alert:
    """The task a failed sync leaves: what kind of failure `exc` is, and `details` (its scrubbed reason)."""
    for kind, code, label in _sync_task_kinds():
        if isinstance(exc, kind):
            return Alert(code=code, message=label, details=details)
    return Alert(code=SYNC_FAILED, message="Sync Failed", details=details)


def rate_limited_warning(details: str) -> Alert:
    return Alert(code=SOURCE_RATE_LIMITED, message="Source Rate Limited", details=details)


def after_sync(connection: Connection, status: str, alert: Alert | None) -> dict[str, Any]:
    """The `tasks` / `warnings` changes of a sync that ended with `status` (and `alert`, its reason)."""
    if status == "SUCCESSFUL":
        return {"tasks": [], "warnings": []}
    if alert is None:
        return {}
    if status == "RESCHEDULED":
        kept = [w for w in connection.warnings if w.code != alert.code]
        return {"warnings": [*kept, alert]}
    return {"tasks": [*(t for t in connection.tasks if t.code in _SETUP_CODES), alert]}


def after_setup_tests(connection: Connection, results: list[SetupTestResult]) -> dict[str, Any]:
    """The `tasks` / `warnings` changes of a setup test run: its own alerts replace the previous run's."""

    def alert(code: str, result: SetupTestResult) -> Alert:
        return Alert(code=code, message=result.title, details=result.message or result.title)

    failed = [alert(SETUP_TEST_FAILED, r) for r in results if r.status in ("FAILED", "JOB_FAILED")]
    warned = [alert(SETUP_TEST_WARNING, r) for r in results if r.status == "WARNING"]
    return {
        "tasks": [*(t for t in connection.tasks if t.code not in _SETUP_CODES), *failed],
        "warnings": [*(w for w in connection.warnings if w.code not in _SETUP_CODES), *warned],
    }
