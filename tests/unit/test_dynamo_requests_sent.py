"""sluice.storage.dynamo.requests_sent: each thread's count of requests sent, retries included."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sluice.storage import dynamo


def _throttled() -> ClientError:
    return ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "PutItem")


def test_every_attempt_is_counted_on_its_own_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dynamo.time, "sleep", lambda _seconds: None)
    answers: list[Any] = [_throttled(), {"ok": 1}]

    def operation(**_request: Any) -> Any:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    before = dynamo.requests_sent()
    assert dynamo.send(operation, TableName="t") == {"ok": 1}
    assert dynamo.requests_sent() - before == 2  # the throttled attempt and its retry

    seen: list[int] = []
    other = threading.Thread(target=lambda: seen.append(dynamo.requests_sent()))
    other.start()
    other.join()
    assert seen == [0]  # another thread (another invocation) has its own count
