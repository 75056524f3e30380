"""Sending requests to DynamoDB: the typed client, retries of what is transient, and the one
translation of a failed condition.

Every request of the storage package goes through `send`, so that:
- throttling, a transaction conflict or an internal error is retried with backoff (a conflict is
  another writer touching the same item at that moment, not a verdict on this write);
- a condition that did not hold, on a single write or in a transaction, raises `ConditionFailed`
  with the per-action reasons, which each caller turns into its own domain error;
- anything else (a validation error, an item over 400 KB) propagates as the ClientError it is.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sluice.errors import Conflict

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient as DynamoDBClient
else:
    DynamoDBClient = Any

T = TypeVar("T")

# Error codes that say "not now" rather than "no": the same request may succeed a moment later.
TRANSIENT_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TransactionConflictException",
        "TransactionInProgressException",
        "InternalServerError",
        "ServiceUnavailable",
        "LimitExceededException",
    }
)
# Cancellation reasons of a transaction that are transient in the same sense.
TRANSIENT_REASONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})
ATTEMPTS = 8
BASE_DELAY_SECONDS = 0.02
MAX_DELAY_SECONDS = 1.0


_sent = threading.local()


def requests_sent() -> int:
    """How many requests this thread has sent to DynamoDB (retries included). On Lambda a thread is an
    invocation's: the difference across a sync is that sync's cost in requests."""
    return int(getattr(_sent, "count", 0))


class ConditionFailed(Exception):
    """A write's condition did not hold. `reasons` are a transaction's cancellation codes, one per
    action in order ("None" for an action that was fine); a single write has ["ConditionalCheckFailed"]."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__(", ".join(reasons))
        self.reasons = reasons

    def failed(self, index: int) -> bool:
        """Whether the action at `index` is the one whose condition failed."""
        return index < len(self.reasons) and self.reasons[index] == "ConditionalCheckFailed"


class StillConflicting(Conflict):
    """A request stayed throttled or in conflict through every retry: the caller may retry later."""

    def __init__(self, code: str) -> None:
        super().__init__(f"The store is busy ({code}); retry")


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def cancellation_reasons(exc: BaseException) -> list[str]:
    response = getattr(exc, "response", None) or {}
    return [str(r.get("Code") or "None") for r in response.get("CancellationReasons", [])]


def _transient(exc: BaseException) -> bool:
    code = error_code(exc)
    if code == "TransactionCanceledException":
        reasons = cancellation_reasons(exc)
        return "ConditionalCheckFailed" not in reasons and any(r in TRANSIENT_REASONS for r in reasons)
    return code in TRANSIENT_CODES


def backoff(attempt: int) -> float:
    """Full-jitter exponential backoff (seconds) before retry number `attempt` (from 1)."""
    return random.uniform(0, min(MAX_DELAY_SECONDS, BASE_DELAY_SECONDS * 2**attempt))


def send(operation: Callable[..., T], **request: Any) -> T:
    """Call one client operation (e.g. `client.put_item`) with `request`, retrying transient failures."""
    from botocore.exceptions import ClientError

    for attempt in range(1, ATTEMPTS + 1):
        _sent.count = requests_sent() + 1
        try:
            return operation(**request)
        except ClientError as exc:
            code = error_code(exc)
            if code == "ConditionalCheckFailedException":
                raise ConditionFailed(["ConditionalCheckFailed"]) from None
            if code == "TransactionCanceledException" and "ConditionalCheckFailed" in cancellation_reasons(
                exc
            ):
                raise ConditionFailed(cancellation_reasons(exc)) from None
            if not _transient(exc):
                raise
            if attempt == ATTEMPTS:
                raise StillConflicting(code) from exc
            time.sleep(backoff(attempt))
    raise AssertionError("unreachable")
