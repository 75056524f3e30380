"""The catch-all function: unknown paths are 404 and known paths with the wrong method 405, as JSON."""

from __future__ import annotations

import pytest

from tests.support.api_events import api_event, invoke


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/v1/unknown", 404, "NotFound"),
        ("GET", "/", 404, "NotFound"),
        ("PUT", "/v1/connections/abc", 405, "MethodNotAllowed"),
        ("DELETE", "/v1/groups", 405, "MethodNotAllowed"),
        ("POST", "/v1/connectors/abc", 405, "MethodNotAllowed"),
    ],
)
def test_unknown_routes_answer_json(aws, method: str, path: str, status: int, code: str) -> None:
    event = api_event("route_not_found", path=path)
    event["httpMethod"] = method
    reply = invoke("route_not_found", event)
    assert reply.status == status
    assert reply.body["code"] == code
    assert reply.headers["Content-Type"] == "application/json"
