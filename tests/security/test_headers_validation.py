"""Issue 9 item 7: header names and values in a rest_api config are checked at create and update.

Before, CR/LF, colons, empty names and non-Latin-1 values were stored, then every setup test and
sync failed with `InvalidHeader` / `UnicodeEncodeError` shown as an internal error.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.security.echo_server import EchoServer
from tests.support.api_events import call, connection_path, make_connection, make_group, rest_api_config

BAD_HEADERS = [
    pytest.param({"X-A": "one\r\nX-Injected: two"}, "line break", id="crlf-in-value"),
    pytest.param({"X-A": "one\ntwo"}, "line break", id="lf-in-value"),
    pytest.param({"X-A\r\nX-B": "v"}, "not valid", id="crlf-in-name"),
    pytest.param({"X-A: b": "v"}, "not valid", id="colon-in-name"),
    pytest.param({"": "v"}, "empty", id="empty-name"),
    pytest.param({"X A": "v"}, "not valid", id="space-in-name"),
    pytest.param({"X-Ä": "v"}, "not valid", id="non-token-name"),
    pytest.param({"X-A": "naïve ✓"}, "Latin-1", id="non-latin-1-value"),
    pytest.param({"X-A": " padded"}, "whitespace", id="leading-space"),
    pytest.param({"X-A": "nul\x00"}, "control character", id="nul-in-value"),
    pytest.param({"Host": "evil.example"}, "set by the HTTP client", id="host"),
    pytest.param({"Content-Length": "0"}, "set by the HTTP client", id="content-length"),
]

BAD_AUTH = [
    pytest.param({"type": "bearer", "token": "tok\r\nX-Injected: 1"}, "auth.token", id="bearer-crlf"),
    pytest.param({"type": "bearer", "token": "tök✓"}, "auth.token", id="bearer-non-latin-1"),
    pytest.param(
        {"type": "api_key", "header": "X Key", "api_key": "key-9"}, "auth.header", id="api-key-name"
    ),
    pytest.param(
        {"type": "api_key", "header": "", "api_key": "key-9"}, "auth.header", id="api-key-empty-name"
    ),
    pytest.param({"type": "api_key", "api_key": "key-9\n"}, "auth.api_key", id="api-key-lf"),
    pytest.param({"type": "basic", "username": "a:b", "password": "pw-9"}, "auth.username", id="basic-colon"),
    pytest.param({"type": "basic", "username": "u", "password": "p✓"}, "auth.password", id="basic-non-latin"),
]


def _create(config: dict[str, Any]) -> Any:
    group_id = make_group()
    body = {"group_id": group_id, "service": "rest_api", "config": config, "run_setup_tests": False}
    return call("create_connection", body=body)


def _assert_clear_400(reply: Any, field: str, words: str) -> None:
    assert reply.status == 400, reply.body
    assert reply.body["code"] == "InvalidInput"
    assert f"config.{field}" in reply.body["message"]
    assert words in reply.body["message"]


@pytest.mark.parametrize(("headers", "words"), BAD_HEADERS)
def test_create_refuses_bad_headers_with_a_clear_400(aws, headers: dict[str, str], words: str) -> None:
    reply = _create(rest_api_config(headers=headers))
    _assert_clear_400(reply, "headers", words)
    listed = call("list_connections", query=None)
    assert listed.data["items"] == []  # nothing half-written


@pytest.mark.parametrize(("headers", "words"), BAD_HEADERS)
def test_update_refuses_bad_headers_and_keeps_the_stored_ones(
    aws, headers: dict[str, str], words: str
) -> None:
    created = make_connection(make_group(), config=rest_api_config(headers={"X-Tenant": "acme"}))
    path = connection_path(created["id"])
    reply = call("update_connection", path=path, body={"config": {"headers": headers}})
    _assert_clear_400(reply, "headers", words)
    assert call("get_connection", path=path).data["config"]["headers"] == {"X-Tenant": "acme"}


@pytest.mark.parametrize(("auth", "field"), BAD_AUTH)
def test_credentials_that_cannot_be_header_values_are_refused(aws, auth: dict[str, str], field: str) -> None:
    reply = _create(rest_api_config(auth=auth))
    assert reply.status == 400, reply.body
    assert reply.body["code"] == "InvalidInput"
    # The field is named (pydantic puts the auth type between: config.auth.bearer.token).
    assert reply.body["message"].startswith("Invalid value for field 'config.auth.")
    assert f".{field.split('.')[-1]}'" in reply.body["message"]
    # The message says what is wrong, never the secret.
    for secret in ("token", "api_key", "password"):
        if secret in auth:
            assert auth[secret] not in reply.body["message"]


def test_valid_headers_pass_and_reach_the_server(aws) -> None:
    headers = {"X-Tenant": "acme", "X-Weird_Token!#$%&'*+-.^`|~": "ok", "X-Latin": "café\tbar"}
    with EchoServer() as server:
        config = rest_api_config(base_url=server.url, headers=headers)
        reply = _create({**config, "auth": {"type": "none"}})
        assert reply.status == 201, reply.body
        tested = call("test_connection", path=connection_path(reply.data["id"]) + "/test", body={})
        assert tested.status == 200, tested.body
        assert [t["status"] for t in tested.data["setup_tests"]][-1] in ("PASSED", "WARNING")
        seen = server.requests[-1].headers
        assert seen["X-Tenant"] == "acme" and seen["X-Latin"] == "café\tbar"
