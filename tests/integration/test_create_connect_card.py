"""POST /v1/connections/{id}/connect-card (and connect_card_config on create): the link and its token."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from sluice.connect_card import cards as connect_card
from tests.support.api_events import (
    Account,
    api_event,
    call,
    connection_path,
    invoke,
    make_connection,
    make_group,
    rest_api_config,
)
from tests.support.connect_card_pages import query_of

OP = "create_connect_card"
REDIRECT = "https://app.example.com/done?step=2"


@pytest.fixture(autouse=True)
def fresh_signing_key() -> Iterator[None]:
    connect_card.forget_signing_key()  # each test's moto has its own secret
    yield
    connect_card.forget_signing_key()


def card_path(connection_id: str, alias: bool = False) -> str:
    return connection_path(connection_id, alias) + "/connect-card"


def request_card(connection_id: str, body: Any = None, **kwargs: Any) -> Any:
    if body is None:
        body = {"connect_card_config": {"redirect_uri": REDIRECT, "hide_setup_guide": True}}
    return call(OP, path=card_path(connection_id), body=body, **kwargs)


def payload_of(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def test_connect_card_returns_token_uri_and_config(aws) -> None:
    created = make_connection(make_group())
    reply = request_card(created["id"])
    assert reply.status == 200
    assert reply.body["code"] == "Success"
    data = reply.data
    assert data["connector_id"] == created["id"]
    assert data["connect_card_config"] == {
        "redirect_uri": REDIRECT,
        "hide_setup_guide": True,
        "all_fields": False,
    }
    token = data["connect_card"]["token"]
    uri = data["connect_card"]["uri"]
    # The sample event's Host is a custom domain: no stage in the path.
    assert uri.startswith("https://api.example.com/connect-card/setup?")
    assert query_of(uri) == {"redirect_uri": REDIRECT, "auth": token}


def test_token_is_an_hs256_jwt_valid_for_one_day_with_the_connection_and_account(aws) -> None:
    created = make_connection(make_group())
    token = request_card(created["id"]).data["connect_card"]["token"]
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"alg": "HS256", "typ": "JWT"}
    claims = payload_of(token)
    assert claims["connection_id"] == created["id"]
    assert claims["account_id"] == "acct_example"
    assert claims["exp"] - claims["iat"] == 24 * 3600
    verified = connect_card.verify_token(token, connect_card.signing_key())
    assert verified.connection_id == created["id"]
    assert verified.redirect_uri == REDIRECT


def test_every_card_has_its_own_jti(aws) -> None:
    created = make_connection(make_group())
    first = payload_of(request_card(created["id"]).data["connect_card"]["token"])
    second = payload_of(request_card(created["id"]).data["connect_card"]["token"])
    assert first["jti"] != second["jti"]


def test_token_is_signed_with_the_key_in_secrets_manager(aws) -> None:
    import hashlib
    import hmac

    import boto3

    created = make_connection(make_group())
    token = request_card(created["id"]).data["connect_card"]["token"]
    secret = boto3.client("secretsmanager").get_secret_value(SecretId=aws.env["CONNECT_CARD_SECRET_ID"])
    key = json.loads(secret["SecretString"])["signing_key"].encode()
    head, payload, signature = token.split(".")
    expected = hmac.new(key, f"{head}.{payload}".encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64encode(expected).decode().rstrip("=") == signature


@pytest.mark.parametrize("raw_body", [None, "", "{}"])
def test_empty_body_is_read_as_empty_config(aws, raw_body: str | None) -> None:
    created = make_connection(make_group())
    reply = call(OP, path=card_path(created["id"]), raw_body=raw_body)
    assert reply.status == 200, reply.body
    assert reply.data["connect_card_config"] == {
        "redirect_uri": None,
        "hide_setup_guide": False,
        "all_fields": False,
    }
    assert query_of(reply.data["connect_card"]["uri"])["redirect_uri"] == ""


def test_connectors_alias_works_and_unknown_ids_are_404(aws) -> None:
    created = make_connection(make_group())
    reply = call(OP, path=card_path(created["id"], alias=True), body={})
    assert reply.status == 200
    assert call(OP, path=card_path("missing"), body={}).body["code"] == "NotFound_Connection"
    assert call(OP, path=card_path("missing", alias=True), body={}).body["code"] == "NotFound_Connector"


def test_another_accounts_connection_is_404(aws) -> None:
    created = make_connection(make_group())
    reply = request_card(created["id"], account=Account("acct_other", "user_other"))
    assert reply.status == 404


@pytest.mark.parametrize(
    "redirect_uri",
    ["javascript:alert(1)", "ftp://example.com/x", "example.com/done", "https://", "https://ex ample.com"],
)
def test_redirect_uri_must_be_http_or_https(aws, redirect_uri: str) -> None:
    created = make_connection(make_group())
    reply = request_card(created["id"], body={"connect_card_config": {"redirect_uri": redirect_uri}})
    assert reply.status == 400
    assert reply.body["code"] == "InvalidInput"
    assert "redirect_uri" in reply.body["message"]


def test_unknown_config_field_is_400(aws) -> None:
    created = make_connection(make_group())
    reply = request_card(created["id"], body={"connect_card_config": {"colour": "blue"}})
    assert reply.status == 400
    assert reply.body["code"] == "InvalidInput"


def test_uri_on_an_execute_api_host_includes_the_stage(aws) -> None:
    created = make_connection(make_group())
    event = api_event(OP, path=card_path(created["id"]), body={})
    event["headers"] = {**event["headers"], "Host": "abc123.execute-api.us-east-1.amazonaws.com"}
    uri = invoke(OP, event).data["connect_card"]["uri"]
    assert uri.startswith("https://abc123.execute-api.us-east-1.amazonaws.com/v1stage/connect-card/setup?")


def test_uri_on_loopback_is_http_without_stage(aws) -> None:
    created = make_connection(make_group())
    event = api_event(OP, path=card_path(created["id"]), body={})
    event["headers"] = {**event["headers"], "Host": "127.0.0.1:3000"}
    uri = invoke(OP, event).data["connect_card"]["uri"]
    assert uri.startswith("http://127.0.0.1:3000/connect-card/setup?")


def test_public_base_url_setting_wins(aws, monkeypatch: pytest.MonkeyPatch) -> None:
    from sluice.settings import get_settings

    created = make_connection(make_group())
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://sluice.example.org/api/")
    get_settings.cache_clear()
    try:
        uri = request_card(created["id"]).data["connect_card"]["uri"]
    finally:
        get_settings.cache_clear()
    assert uri.startswith("https://sluice.example.org/api/connect-card/setup?")


# ---- connect_card_config on create ----------------------------------------------------------------


def test_create_with_connect_card_config_returns_a_card(aws) -> None:
    group_id = make_group()
    reply = call(
        "create_connection",
        body={
            "group_id": group_id,
            "service": "rest_api",
            "config": rest_api_config(),
            "run_setup_tests": False,
            "connect_card_config": {"redirect_uri": REDIRECT},
        },
    )
    assert reply.status == 201
    card = reply.data["connect_card"]
    assert payload_of(card["token"])["connection_id"] == reply.data["id"]
    assert query_of(card["uri"])["auth"] == card["token"]
    assert reply.data["connect_card_config"] == {
        "redirect_uri": REDIRECT,
        "hide_setup_guide": False,
        "all_fields": False,
    }


def test_create_without_connect_card_config_has_no_card(aws) -> None:
    created = make_connection(make_group())
    assert "connect_card" not in created


def test_create_with_a_bad_redirect_uri_is_400_and_creates_nothing(aws) -> None:
    group_id = make_group()
    reply = call(
        "create_connection",
        body={
            "group_id": group_id,
            "service": "rest_api",
            "config": rest_api_config(),
            "run_setup_tests": False,
            "connect_card_config": {"redirect_uri": "javascript:alert(1)"},
        },
    )
    assert reply.status == 400
    listed = call("list_connections", query={"group_id": group_id})
    assert listed.data["items"] == []


# ---- the token itself -----------------------------------------------------------------------------


def _claims(now: int = 1_800_000_000) -> connect_card.CardClaims:
    return connect_card.CardClaims(
        connection_id="conn_1",
        account_id="acct_1",
        user_id="user_1",
        jti="jti-1",
        iat=now,
        exp=now + connect_card.TOKEN_TTL_SECONDS,
        redirect_uri=REDIRECT,
    )


KEY = b"k" * 48


def test_verify_accepts_its_own_token_until_it_expires() -> None:
    token = connect_card.issue_token(_claims(), KEY)
    assert connect_card.verify_token(token, KEY, now=1_800_000_000 + 10).connection_id == "conn_1"
    assert connect_card.verify_token(token, KEY, now=1_800_000_000 + 86399).jti == "jti-1"
    with pytest.raises(connect_card.CardTokenExpired):
        connect_card.verify_token(token, KEY, now=1_800_000_000 + 86400)


def _flip(text: str, index: int) -> str:
    char = text[index]
    return text[:index] + ("A" if char != "A" else "B") + text[index + 1 :]


@pytest.mark.parametrize("part", [0, 1, 2])
def test_a_flipped_character_in_any_part_is_refused(part: int) -> None:
    token = connect_card.issue_token(_claims(), KEY)
    parts = token.split(".")
    parts[part] = _flip(parts[part], len(parts[part]) // 2)
    with pytest.raises(connect_card.CardTokenError):
        connect_card.verify_token(".".join(parts), KEY, now=1_800_000_000)


def test_a_token_signed_with_another_key_is_refused() -> None:
    token = connect_card.issue_token(_claims(), b"x" * 48)
    with pytest.raises(connect_card.CardTokenError):
        connect_card.verify_token(token, KEY, now=1_800_000_000)


def test_alg_none_and_garbage_are_refused() -> None:
    token = connect_card.issue_token(_claims(), KEY)
    none_header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').decode().rstrip("=")
    _, payload, _ = token.split(".")
    for bad in (f"{none_header}.{payload}.", "", "a.b", "a.b.c", "...", token + ".x", "%%%.%%%.%%%"):
        with pytest.raises(connect_card.CardTokenError):
            connect_card.verify_token(bad, KEY, now=1_800_000_000)


def test_a_token_from_the_future_is_refused() -> None:
    token = connect_card.issue_token(_claims(now=1_800_000_000 + 3600), KEY)
    with pytest.raises(connect_card.CardTokenError):
        connect_card.verify_token(token, KEY, now=1_800_000_000)


def test_csrf_token_is_bound_to_the_link() -> None:
    claims = _claims()
    other = connect_card.CardClaims(**{**claims.__dict__, "jti": "jti-2"})
    token = connect_card.csrf_token(claims, KEY)
    assert connect_card.csrf_ok(claims, token, KEY)
    assert not connect_card.csrf_ok(other, token, KEY)
    assert not connect_card.csrf_ok(claims, None, KEY)
    assert not connect_card.csrf_ok(claims, "", KEY)
    assert not connect_card.csrf_ok(claims, connect_card.csrf_token(claims, b"y" * 48), KEY)


def test_redirect_uri_and_hide_setup_guide_are_read_at_the_top_level_too(aws) -> None:
    # Some clients send them beside connect_card_config rather than inside it.
    created = make_connection(make_group())
    reply = request_card(created["id"], body={"redirect_uri": REDIRECT, "hide_setup_guide": True})
    assert reply.status == 200, reply.body
    assert reply.data["connect_card_config"]["redirect_uri"] == REDIRECT
    assert reply.data["connect_card_config"]["hide_setup_guide"] is True
    verified = connect_card.verify_token(reply.data["connect_card"]["token"], connect_card.signing_key())
    assert verified.redirect_uri == REDIRECT and verified.hide_setup_guide is True


def test_a_value_inside_connect_card_config_wins_over_the_top_level(aws) -> None:
    created = make_connection(make_group())
    body = {
        "redirect_uri": "https://top.example.com/",
        "hide_setup_guide": True,
        "connect_card_config": {"redirect_uri": REDIRECT},
    }
    data = request_card(created["id"], body=body).data
    assert data["connect_card_config"]["redirect_uri"] == REDIRECT
    assert data["connect_card_config"]["hide_setup_guide"] is True


def test_a_bad_top_level_redirect_uri_is_refused(aws) -> None:
    created = make_connection(make_group())
    reply = request_card(created["id"], body={"redirect_uri": "javascript:alert(1)"})
    assert reply.status == 400 and reply.body["code"] == "InvalidInput"


def test_all_fields_is_accepted_echoed_and_carried_in_the_token(aws) -> None:
    created = make_connection(make_group())
    body = {"connect_card_config": {"redirect_uri": REDIRECT, "all_fields": True}}
    reply = request_card(created["id"], body=body)
    assert reply.status == 200, reply.body
    assert reply.data["connect_card_config"]["all_fields"] is True
    verified = connect_card.verify_token(reply.data["connect_card"]["token"], connect_card.signing_key())
    assert verified.all_fields is True


def test_a_misspelt_connect_card_field_is_still_refused(aws) -> None:
    created = make_connection(make_group())
    reply = request_card(created["id"], body={"connect_card_config": {"all_field": True}})
    assert reply.status == 400
    assert reply.body["message"] == "Field 'connect_card_config.all_field' is not supported"
