"""Issue 9 item 13 (first part): a connection never reaches the deployment's own endpoints.

On the local stack a loopback source could read moto's dashboard and found the Connect Card signing
key. The outbound guard now refuses the addresses listed in SLUICE_OWN_ENDPOINTS (the stack sets its
moto server and API there) even though loopback sources are allowed. A real loopback server plays
the stack's own endpoint.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from sluice.outbound import GuardedSession, RefusedAddress
from sluice.settings import get_settings
from sluice.sources import rest_api
from sluice.sources.base import SetupTestOptions
from tests.security.echo_server import EchoServer, Seen
from tests.support.loopback import loopback_allowed


@pytest.fixture(autouse=True)
def _loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from loopback_allowed(monkeypatch)


@pytest.fixture
def own(monkeypatch: pytest.MonkeyPatch) -> Iterator[EchoServer]:
    """A loopback server listed as one of the stack's own endpoints (like moto's port)."""
    with EchoServer(lambda *_: (200, {"signing_key": "do-not-leak"}, {})) as server:
        monkeypatch.setenv("SLUICE_OWN_ENDPOINTS", f"127.0.0.1:{server.port}, 127.0.0.1:1")
        get_settings.cache_clear()
        yield server


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "127.0.0.2", "[::1]"])
def test_the_own_endpoint_is_refused_on_every_loopback_spelling(own: EchoServer, host: str) -> None:
    if host == "[::1]" and not _ipv6_loopback():
        pytest.skip("no IPv6 loopback here")
    with GuardedSession() as session, pytest.raises(RefusedAddress) as refused:
        session.get(f"http://{host}:{own.port}/moto-api/")
    assert "own endpoints" in str(refused.value)
    assert own.requests == []


def test_other_loopback_servers_stay_reachable(own: EchoServer) -> None:
    with EchoServer() as source, GuardedSession() as session:
        assert session.get(f"{source.url}/items").status == 200
    assert own.requests == []


def test_a_redirect_to_the_own_endpoint_is_refused(own: EchoServer) -> None:
    def redirect(_request: Seen, _server: EchoServer) -> tuple[int, Any, dict[str, str]]:
        return 302, {}, {"Location": f"{own.url}/moto-api/data.json"}

    with EchoServer(redirect) as source, GuardedSession() as session, pytest.raises(RefusedAddress):
        session.get(f"{source.url}/items")
    assert own.requests == []


def test_setup_tests_stop_at_resolving_the_own_endpoint(own: EchoServer) -> None:
    config = {
        "schema": "s",
        "base_url": own.url,
        "tables": [{"name": "t", "path": "/moto-api/data.json", "primary_key": ["id"]}],
    }
    results = rest_api.setup_tests(config, SetupTestOptions(timeout=10))
    assert results[0].status == "FAILED" and "own endpoints" in results[0].message
    assert {r.status for r in results[1:]} == {"SKIPPED"}
    assert own.requests == []


def test_an_own_endpoint_on_all_interfaces_covers_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    with EchoServer() as server:
        monkeypatch.setenv("SLUICE_OWN_ENDPOINTS", f"0.0.0.0:{server.port}")
        get_settings.cache_clear()
        with GuardedSession() as session, pytest.raises(RefusedAddress):
            session.get(f"{server.url}/")
        assert server.requests == []


def test_a_malformed_setting_is_an_error_not_an_open_door(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_OWN_ENDPOINTS", "127.0.0.1")
    get_settings.cache_clear()
    with pytest.raises(ValueError, match="not host:port"):
        get_settings()
