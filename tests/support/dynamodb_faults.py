"""Transient DynamoDB failures on demand: the next N responses of one operation are replaced, at the
HTTP layer of the real client, by the error DynamoDB sends when another writer holds the item
(a transaction conflict) or the table is throttled. Everything else reaches the real backend."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_PREFIX = "com.amazonaws.dynamodb.v20120810#"


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def transaction_conflict(actions: int, conflicting: int) -> dict[str, Any]:
    reasons = [{"Code": "None"} for _ in range(actions)]
    reasons[conflicting] = {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
    return {
        "__type": f"{_PREFIX}TransactionCanceledException",
        "message": "Transaction cancelled, please refer cancellation reasons for specific reasons",
        "CancellationReasons": reasons,
    }


def write_conflict() -> dict[str, Any]:
    return {
        "__type": f"{_PREFIX}TransactionConflictException",
        "message": "Transaction is ongoing for the item",
    }


@contextmanager
def failing(client: Any, operation: str, errors: list[dict[str, Any]]) -> Iterator[list[str]]:
    """Answer the next len(errors) `operation` calls of `client` with these errors, in order.
    Yields the list of operations answered so (to check they were used)."""
    from botocore.awsrequest import AWSResponse

    pending = list(errors)
    answered: list[str] = []

    def answer(**_: Any) -> AWSResponse | None:
        if not pending:
            return None
        body = json.dumps(pending.pop(0)).encode()
        answered.append(operation)
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "injected"}
        return AWSResponse("https://dynamodb.injected/", 400, headers, _Raw(body))

    event = f"before-send.dynamodb.{operation}"
    client.meta.events.register_first(event, answer)
    try:
        yield answered
    finally:
        client.meta.events.unregister(event, answer)
