"""Issue 9 item 4: credentials go only to the origin (scheme, host, port) of `base_url`.

Before, a `next_link` or `Link` header pointing at another host or port received the bearer token.
Now a next-page link to another origin fails the sync with a clear reason and is never requested;
the guarded session also never attaches credentials to another origin. Two real loopback servers on
different ports play the API and the other origin.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from sluice.outbound import GuardedSession
from sluice.sources import rest_api
from sluice.sources.base import SourceError
from sluice.storage.store import get_store
from sluice.storage.sync_store import SyncStore
from tests.security.echo_server import EchoServer, Seen
from tests.support.loopback import loopback_allowed

TOKEN = "tok-origin-secret"
CREDENTIAL_HEADERS = ("authorization", "x-api-key")


@pytest.fixture(autouse=True)
def _loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from loopback_allowed(monkeypatch)


def _paging_to(other: EchoServer, style: str) -> Any:
    """An API whose first page links its next page at `other` (in the body or the Link header)."""

    def respond(request: Seen, _server: EchoServer) -> tuple[int, Any, dict[str, str]]:
        link = f"{other.url}/items?page=2"
        if style == "next_link":
            return 200, {"data": [{"id": 1}], "next": link}, {}
        return 200, {"data": [{"id": 1}]}, {"Link": f'<{link}>; rel="next"'}

    return respond


def _config(url: str, style: str, auth: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "schema": "shop",
        "base_url": url,
        "auth": auth or {"type": "bearer", "token": TOKEN},
        "tables": [
            {
                "name": "items",
                "path": "/items",
                "records_path": "data",
                "primary_key": ["id"],
                "pagination": {"type": style},
            }
        ],
    }


def _carries_credentials(request: Seen) -> bool:
    return any(h.lower() in CREDENTIAL_HEADERS for h in request.headers)


@pytest.mark.parametrize("style", ["next_link", "link_header"])
def test_a_next_page_on_another_port_fails_the_sync_and_is_never_requested(style: str) -> None:
    with EchoServer() as other, EchoServer(_paging_to(other, style)) as api:
        with pytest.raises(SourceError) as failed:
            list(rest_api.extract(_config(api.url, style), {}, time.monotonic() + 30))
        assert other.requests == []
        assert api.requests and all(r.headers.get("Authorization") == f"Bearer {TOKEN}" for r in api.requests)
    message = str(failed.value)
    assert f"127.0.0.1:{other.port}" in message
    assert "another origin than base_url" in message
    assert TOKEN not in message


def test_a_next_page_on_the_same_origin_is_followed_with_credentials() -> None:
    def respond(request: Seen, server: EchoServer) -> tuple[int, Any, dict[str, str]]:
        if "page=2" in request.path:
            return 200, {"data": [{"id": 2}], "next": None}, {}
        return 200, {"data": [{"id": 1}], "next": f"{server.url}/items?page=2"}, {}

    with EchoServer(respond) as api:
        ops = list(rest_api.extract(_config(api.url, "next_link"), {}, time.monotonic() + 30))
        assert [r.path for r in api.requests] == ["/items", "/items?page=2"]
        assert all(r.headers.get("Authorization") == f"Bearer {TOKEN}" for r in api.requests)
    assert [row["id"] for op in ops for row in getattr(op, "rows", [])] == [1, 2]


@pytest.mark.parametrize(
    "auth",
    [
        {"type": "bearer", "token": TOKEN},
        {"type": "api_key", "api_key": TOKEN},
        {"type": "basic", "username": "ann", "password": TOKEN},
    ],
    ids=lambda a: a["type"],
)
def test_the_session_never_attaches_credentials_to_another_origin(auth: dict[str, str]) -> None:
    from sluice.sources.rest_api.client import session_for
    from sluice.sources.rest_api.config import RestApiConfig

    with EchoServer() as other, EchoServer() as api:
        config = RestApiConfig.model_validate(_config(api.url, "none", auth))
        with session_for(config) as session:
            session.get(f"{api.url}/items")
            session.get(f"{other.url}/items")
        assert _carries_credentials(api.requests[0])
        assert not _carries_credentials(other.requests[0])


def test_without_a_credential_origin_each_request_keeps_its_own_headers() -> None:
    with EchoServer() as api, GuardedSession(headers={"Authorization": "Bearer x"}) as session:
        session.get(f"{api.url}/items")
        assert api.requests[0].headers["Authorization"] == "Bearer x"


def test_the_worker_records_why_the_sync_stopped(aws) -> None:
    from tests.support.syncing import (
        get_connection,
        make_group_with_duckdb,
        make_rest_connection,
        run_worker,
        sync_event,
    )

    with EchoServer() as other, EchoServer(_paging_to(other, "next_link")) as api:
        group_id = make_group_with_duckdb("lake.duckdb")
        connection = make_rest_connection(group_id, _config(api.url, "next_link"))
        run_worker(sync_event(connection["id"], event_id="sync-to-other-origin"))
        assert other.requests == []
    after = get_connection(connection["id"])
    assert after["failed_at"] is not None and after["succeeded_at"] is None
    run = SyncStore(get_store()).run(connection["id"], "sync-to-other-origin")
    assert run is not None and run["status"] == "FAILURE_WITH_TASK"
    assert "another origin than base_url" in run["message"] and TOKEN not in run["message"]
