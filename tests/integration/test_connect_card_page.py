"""GET/POST /connect-card/setup through the connect_card_page handler on moto: the hosted form, its
token and CSRF checks, escaping, secrets, saving and the setup tests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from local.sample_api import SampleApi
from sluice.connect_card import cards as connect_card
from sluice.timestamps import clock_set_to, utc_now
from tests.support.api_events import call, connection_path, make_connection, make_group, rest_api_config
from tests.support.connect_card_pages import get_page, invoke_page, page_event, post_page, query_of

REDIRECT = "https://app.example.com/done"
EVIL = '"><script>alert(1)</script>'


@pytest.fixture(autouse=True)
def fresh_signing_key() -> Iterator[None]:
    connect_card.forget_signing_key()  # each test's moto has its own secret
    yield
    connect_card.forget_signing_key()


@pytest.fixture
def sample_api() -> Iterator[SampleApi]:
    with SampleApi(rows=10, token="right") as api:
        yield api


def sample_config(api: SampleApi, token: str = "wrong", **overrides: Any) -> dict[str, Any]:
    return rest_api_config(
        schema="sample",
        base_url=api.url,
        auth={"type": "bearer", "token": token},
        tables=[
            {
                "name": "items",
                "path": "/next_link/items",
                "records_path": "data",
                "primary_key": ["id"],
                "pagination": {"type": "next_link", "next_path": "links.next"},
            }
        ],
        **overrides,
    )


def card_query(
    connection_id: str, redirect_uri: str | None = REDIRECT, all_fields: bool = False
) -> dict[str, str]:
    body = {"connect_card_config": {"redirect_uri": redirect_uri, "all_fields": all_fields}}
    reply = call("create_connect_card", path=connection_path(connection_id) + "/connect-card", body=body)
    assert reply.status == 200, reply.body
    return query_of(reply.data["connect_card"]["uri"])


def stored(connection_id: str) -> Any:
    from sluice.storage.store import get_store

    return get_store().get_connection(None, connection_id)


def stored_secret(connection_id: str, pointer: str = "auth/token") -> str:
    from sluice.config_secrets import secret_box

    connection = stored(connection_id)
    return secret_box().decrypt(connection.id, {pointer: connection.secrets[pointer]})[pointer]


# ---- the form -------------------------------------------------------------------------------------


def test_page_is_html_with_the_safety_headers(aws) -> None:
    created = make_connection(make_group())
    reply = get_page(card_query(created["id"]))
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/html")
    csp = reply.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    assert "script-src" not in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp and "form-action 'self'" in csp
    assert reply.headers["X-Frame-Options"] == "DENY"
    assert reply.headers["Referrer-Policy"] == "no-referrer"
    assert reply.headers["Cache-Control"] == "no-store"
    assert "<script" not in reply.body.lower()


def test_the_style_block_matches_its_csp_hash(aws) -> None:
    import base64
    import hashlib

    created = make_connection(make_group())
    reply = get_page(card_query(created["id"]))
    style = re.search(r"<style>(.*?)</style>", reply.body, re.S)
    assert style is not None
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in reply.headers["Content-Security-Policy"]


def test_form_is_generated_from_the_config_schema_with_current_values(aws) -> None:
    created = make_connection(make_group())
    reply = get_page(card_query(created["id"], all_fields=True))
    fields = reply.form()
    assert fields["base_url"] == "https://api.example.com"
    assert fields["auth.type"] == "bearer"
    assert fields["page_size"] == "100"
    assert fields["tables.0.name"] == "orders"
    assert fields["tables.0.path"] == "/v1/orders"
    assert fields["tables.0.primary_key"] == "id"
    assert fields["tables.0.pagination.type"] == "none"
    assert fields["tables.1._item"] == "new"  # an empty entry to add a table
    # Every auth variant is there; the chosen one is shown by CSS, without script.
    for name in ("auth~basic.username", "auth~basic.password", "auth~bearer.token", "auth~api_key.header"):
        assert name in fields
    assert 'type="number"' in reply.body and 'type="checkbox"' in reply.body
    # The naming key is shown, read-only and not submitted.
    assert re.search(r'<input type="text" id="f-schema" value="shop" readonly>', reply.body)
    assert "schema" not in fields


def test_secrets_are_never_in_the_page(aws) -> None:
    created = make_connection(make_group())
    reply = get_page(card_query(created["id"]))
    assert "tok-secret-1" not in reply.body
    assert "******" not in reply.body
    assert re.search(
        r'<input type="password" id="f-auth~bearer.token" name="auth~bearer.token" value=""', reply.body
    )
    assert "Leave blank to keep the stored value" in reply.body
    # Other variants have nothing stored: no hint there.
    basic = reply.body.split('name="auth~basic.password"')[1].split("</div>")[0]
    assert "stored" not in basic


def test_stored_values_are_escaped(aws) -> None:
    config = rest_api_config(headers={"X-Evil": EVIL})
    config["tables"][0]["records_path"] = EVIL
    created = make_connection(make_group(), config=config)
    reply = get_page(card_query(created["id"], all_fields=True))
    assert reply.status == 200
    assert "<script>" not in reply.body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in reply.body
    assert 'value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in reply.body
    # A browser reads the values back intact.
    fields = reply.form()
    assert fields["headers"] == f"X-Evil: {EVIL}"
    assert fields["tables.0.records_path"] == EVIL


def test_setup_guide_can_be_hidden(aws) -> None:
    created = make_connection(make_group())
    assert "Setup guide" in get_page(card_query(created["id"])).body
    body = {"connect_card_config": {"hide_setup_guide": True}}
    reply = call("create_connect_card", path=connection_path(created["id"]) + "/connect-card", body=body)
    page = get_page(query_of(reply.data["connect_card"]["uri"]))
    assert page.status == 200
    assert "Setup guide" not in page.body


# ---- tokens ---------------------------------------------------------------------------------------


def test_missing_token_is_a_401_page(aws) -> None:
    reply = get_page(None)
    assert reply.status == 401
    assert reply.headers["Content-Type"].startswith("text/html")
    assert "not valid" in reply.body and "no token" in reply.body
    assert reply.headers["X-Frame-Options"] == "DENY"


def test_tampered_token_is_a_401_page(aws) -> None:
    created = make_connection(make_group())
    query = card_query(created["id"])
    head, payload, signature = query["auth"].split(".")
    flipped = payload[:10] + ("A" if payload[10] != "A" else "B") + payload[11:]
    for token in (f"{head}.{flipped}.{signature}", f"{head}.{payload}.{signature[:-2]}xx"):
        reply = get_page({**query, "auth": token})
        assert reply.status == 401
        assert "not valid" in reply.body


def test_expired_token_is_a_401_page(aws) -> None:
    created = make_connection(make_group())
    query = card_query(created["id"])
    a_day_later = utc_now() + timedelta(days=1, seconds=1)
    with clock_set_to(lambda: a_day_later):
        reply = get_page(query)
        form_reply = post_page(
            {"auth": query["auth"], "csrf": "x", "base_url": "https://evil.example"}, query
        )
    assert reply.status == 401
    assert "expired" in reply.body
    assert form_reply.status == 401
    assert stored(created["id"]).config["base_url"] == "https://api.example.com"


def test_token_for_another_account_is_a_403_page(aws) -> None:
    created = make_connection(make_group())
    connection = stored(created["id"])
    forged = connect_card.new_claims(connection.model_copy(update={"account_id": "acct_other"}), "u", None)
    token = connect_card.issue_token(forged, connect_card.signing_key())
    reply = get_page({"auth": token})
    assert reply.status == 403
    assert "does not match" in reply.body


def test_token_for_a_deleted_connection_is_a_403_page(aws) -> None:
    created = make_connection(make_group())
    query = card_query(created["id"])
    assert call("delete_connection", path=connection_path(created["id"])).status == 200
    assert get_page(query).status == 403


# ---- saving ---------------------------------------------------------------------------------------


def test_post_without_or_with_a_wrong_csrf_token_changes_nothing(aws) -> None:
    created = make_connection(make_group())
    query = card_query(created["id"])
    fields = get_page(query).form()
    before = stored(created["id"])
    another_links_csrf = connect_card.csrf_token(_other_claims(), connect_card.signing_key())
    for csrf in (None, "", "forged", another_links_csrf):
        form = {**fields, "base_url": "https://changed.example.com"}
        if csrf is None:
            form.pop("csrf")
        else:
            form["csrf"] = csrf
        reply = post_page(form, query)
        assert reply.status == 403, csrf
        assert "could not be verified" in reply.body
    after = stored(created["id"])
    assert after.version == before.version
    assert after.config == before.config


def _other_claims() -> connect_card.CardClaims:
    return connect_card.CardClaims("c", "a", "u", "another-jti", 0, 1)


def test_right_token_passes_the_setup_tests_and_goes_back(aws, sample_api: SampleApi) -> None:
    created = make_connection(
        make_group(), config=sample_config(sample_api, token="wrong"), run_setup_tests=True
    )
    assert created["status"]["setup_state"] == "incomplete"
    query = card_query(created["id"])
    fields = get_page(query).form()
    reply = post_page({**fields, "auth~bearer.token": "right"}, query)
    assert reply.status == 200, reply.body
    assert "is connected" in reply.body
    assert reply.body.count("badge") >= 4 and "FAILED" not in reply.body
    assert '<meta http-equiv="refresh"' in reply.body
    connection = stored(created["id"])
    assert connection.setup_state == "connected"
    assert connection.config["auth"] == {"type": "bearer", "token": "******"}
    assert stored_secret(created["id"]) == "right"
    # Continue: a 303 to redirect_uri with the connection id.
    link = re.search(r'id="continue" href="([^"]+)"', reply.body)
    assert link is not None
    back = get_page(query_of(link.group(1).replace("&amp;", "&")))
    assert back.status == 303
    assert back.headers["Location"] == f"{REDIRECT}?id={created['id']}"
    # The API still masks the secret.
    got = call("get_connection", path=connection_path(created["id"]))
    assert got.data["config"]["auth"] == {"type": "bearer", "token": "******"}
    assert got.data["status"]["setup_state"] == "connected"


def test_blank_secret_keeps_the_stored_secret(aws, sample_api: SampleApi) -> None:
    created = make_connection(make_group(), config=sample_config(sample_api, token="right"))
    query = card_query(created["id"], all_fields=True)
    fields = get_page(query).form()
    assert fields["auth~bearer.token"] == ""
    reply = post_page({**fields, "page_size": "50"}, query)
    assert reply.status == 200, reply.body
    connection = stored(created["id"])
    assert connection.config["page_size"] == 50
    # The tests passed with the kept secret, decrypted for them.
    assert connection.setup_state == "connected"
    assert stored_secret(created["id"]) == "right"


def test_failed_tests_show_the_results_with_the_form(aws, sample_api: SampleApi) -> None:
    created = make_connection(make_group(), config=sample_config(sample_api, token="right"))
    query = card_query(created["id"])
    fields = get_page(query).form()
    reply = post_page({**fields, "auth~bearer.token": "still-wrong"}, query)
    assert reply.status == 200
    assert "FAILED" in reply.body and "did not pass" in reply.body
    assert 'id="save"' in reply.body
    assert "still-wrong" not in reply.body
    assert stored(created["id"]).setup_state == "incomplete"
    # Continuing before the tests pass goes nowhere.
    assert get_page({**query, "step": "continue"}).status == 409


def test_invalid_values_are_shown_and_nothing_is_saved(aws) -> None:
    created = make_connection(make_group())
    query = card_query(created["id"], all_fields=True)
    fields = get_page(query).form()
    before = stored(created["id"])
    typed = {"base_url": "not a url", "headers": "X-A: 1", "auth~bearer.token": "typed-secret"}
    reply = post_page({**fields, **typed}, query)
    assert reply.status == 400
    assert "config.base_url" in reply.body
    assert "typed-secret" not in reply.body
    # What was typed stays in the form.
    assert reply.form()["base_url"] == "not a url"
    assert reply.form()["headers"] == "X-A: 1"
    assert stored(created["id"]).version == before.version


def test_switching_auth_type_needs_the_new_secret(aws) -> None:
    created = make_connection(make_group())
    query = card_query(created["id"])
    fields = get_page(query).form()
    reply = post_page({**fields, "auth.type": "basic", "auth~basic.username": "me"}, query)
    assert reply.status == 400
    assert "config.auth.password" in reply.body


def test_tables_can_be_added_and_removed(aws) -> None:
    created = make_connection(make_group())
    query = card_query(created["id"], all_fields=True)
    fields = get_page(query).form()
    form = {
        **fields,
        "tables.0._remove": "1",
        "tables.1.name": "customers",
        "tables.1.path": "/v1/customers",
        "tables.1.primary_key": "id, region",
        "tables.1.pagination.type": "cursor",
        "tables.1.pagination~cursor.cursor_path": "meta.next",
        "tables.1.params": "sort: asc",
    }
    post_page(form, query)
    tables = stored(created["id"]).config["tables"]
    assert [t["name"] for t in tables] == ["customers"]
    assert tables[0]["primary_key"] == ["id", "region"]
    pagination = tables[0]["pagination"]
    assert (pagination["type"], pagination["cursor_path"], pagination["cursor_param"]) == (
        "cursor",
        "meta.next",
        "cursor",
    )
    assert tables[0]["params"] == {"sort": "asc"}


ADVANCED_FIELDS = ("page_size", "headers", "tables.0.params", "tables.0.cursor_param", "auth~api_key.header")


def test_a_default_card_shows_only_the_fields_setup_needs(aws) -> None:
    created = make_connection(make_group())
    fields = get_page(card_query(created["id"])).form()
    for name in ("base_url", "auth.type", "auth~bearer.token", "tables.0.name", "tables.0.path"):
        assert name in fields
    assert "tables.0.pagination~cursor.cursor_path" in fields
    for name in (
        *ADVANCED_FIELDS,
        "tables.0.pagination~page.size_param",
        "tables.0.pagination~page.start_page",
    ):
        assert name not in fields
    everything = get_page(card_query(created["id"], all_fields=True)).form()
    for name in (
        *ADVANCED_FIELDS,
        "tables.0.pagination~page.size_param",
        "tables.0.pagination~page.start_page",
    ):
        assert name in everything


def test_fields_a_default_card_hides_keep_their_stored_values(aws) -> None:
    table = {"name": "orders", "path": "/v1/orders", "primary_key": ["id"], "params": {"sort": "asc"}}
    config = rest_api_config(page_size=250, headers={"X-Trace": "on"}, tables=[table])
    created = make_connection(make_group(), config=config)
    query = card_query(created["id"])
    fields = get_page(query).form()
    form = {
        **fields,
        "tables.0.path": "/v2/orders",
        "tables.1.name": "customers",
        "tables.1.path": "/v2/customers",
        "tables.1.primary_key": "id",
    }
    reply = post_page(form, query)
    assert reply.status == 200, reply.body
    saved = stored(created["id"]).config
    assert (saved["page_size"], saved["headers"]) == (250, {"X-Trace": "on"})
    assert [(t["path"], t["params"]) for t in saved["tables"]] == [
        ("/v2/orders", {"sort": "asc"}),
        ("/v2/customers", {}),  # a new table gets the defaults of what the card did not show
    ]
    assert stored_secret(created["id"]) == "tok-secret-1"


def test_an_all_fields_card_edits_the_advanced_fields(aws) -> None:
    created = make_connection(make_group(), config=rest_api_config(headers={"X-Trace": "on"}))
    query = card_query(created["id"], all_fields=True)
    fields = get_page(query).form()
    assert fields["headers"] == "X-Trace: on"
    post_page({**fields, "page_size": "500", "headers": ""}, query)
    saved = stored(created["id"]).config
    assert (saved["page_size"], saved["headers"]) == (500, {})


def test_a_blank_new_table_is_ignored(aws) -> None:
    created = make_connection(make_group())
    query = card_query(created["id"])
    post_page(get_page(query).form(), query)
    assert [t["name"] for t in stored(created["id"]).config["tables"]] == ["orders"]


def test_form_posts_must_be_form_encoded(aws) -> None:
    created = make_connection(make_group())
    query = card_query(created["id"])
    event = page_event("POST", query, {"auth": query["auth"]}, content_type="application/json")
    reply = invoke_page(event)
    assert reply.status == 415
    assert reply.headers["Content-Type"].startswith("text/html")


def test_unknown_path_is_an_html_404(aws) -> None:
    event = page_event("GET", None)
    event["path"] = "/connect-card/other"
    reply = invoke_page(event)
    assert reply.status == 404
    assert reply.headers["Content-Type"].startswith("text/html")


def test_s3_form_has_both_naming_keys_read_only_and_an_enum_select(aws) -> None:
    group_id = make_group()
    config = {"schema": "files", "table": "events", "bucket": "my-bucket", "file_type": "jsonl"}
    reply = call(
        "create_connection",
        body={"group_id": group_id, "service": "s3", "config": config, "run_setup_tests": False},
    )
    assert reply.status == 201, reply.body
    page = get_page(card_query(reply.data["id"]))
    fields = page.form()
    assert "schema" not in fields and "table" not in fields
    assert 'value="events" readonly' in page.body
    assert fields["file_type"] == "jsonl"
    assert fields["bucket"] == "my-bucket"


def test_a_field_sluice_sets_is_shown_read_only_and_kept(aws) -> None:
    group_id = make_group()
    role = "arn:aws:iam::123456789012:role/reader"
    config = {"schema": "files", "table": "events", "bucket": "my-bucket", "role_arn": role}
    reply = call(
        "create_connection",
        body={"group_id": group_id, "service": "s3", "config": config, "run_setup_tests": False},
    )
    assert reply.status == 201, reply.body
    account_id = stored(reply.data["id"]).config["external_id"]
    assert account_id
    query = card_query(reply.data["id"], all_fields=True)
    page = get_page(query)
    fields = page.form()
    assert fields["role_arn"] == role
    assert "external_id" not in fields  # never the tenant's to choose
    assert re.search(rf'id="f-external_id" value="{account_id}" readonly', page.body)
    post_page({**fields, "external_id": "999999999999", "prefix": "exports/"}, query)
    saved = stored(reply.data["id"]).config
    assert (saved["prefix"], saved["external_id"]) == ("exports/", account_id)
    assert "role_arn" not in get_page(card_query(reply.data["id"])).form()  # advanced: all_fields only
