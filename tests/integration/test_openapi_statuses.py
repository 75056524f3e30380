"""docs/openapi.json tells the truth: every status it documents for an operation (and its /v1/connectors
alias) is what a real request gets from the handler on moto, with a body of the documented schema.
A status documented without a scenario here fails too, so the document can't run ahead of the tests."""

from __future__ import annotations

import base64
import json
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate

from local.openapi import render
from local.sample_api import SampleApi
from sluice.api.routes import ROUTES, canonical_path
from sluice.ids import new_id
from sluice.storage.store import get_store
from sluice.timestamps import utc_now
from tests.support.api_events import (
    DEFAULT,
    Account,
    api_event,
    call,
    invoke,
    make_connection,
    make_group,
    rest_api_config,
)
from tests.support.connect_card_pages import get_page, invoke_page, page_event, post_page, query_of
from tests.support.connector_sdk import make_sdk_connection, multipart, upload, upload_headers, zip_connector
from tests.support.syncing import sample_api_config
from tests.support.tls import CertFiles, self_signed
from tests.support.trust import ssh_public_key

DOCUMENT = json.loads(render())
FUNCTIONS = {(method, path): function for method, path, function in ROUTES}
C = "/v1/connections"


@dataclass
class Request:
    path: str
    body: Any = None
    raw_body: str | None = None
    query: dict[str, str] | None = None
    headers: dict[str, str] | None = None
    anonymous: bool = False
    account: Account = DEFAULT
    extra: dict[str, Any] = field(default_factory=dict)


# ---- the world a scenario needs -------------------------------------------------------------------


@pytest.fixture
def source() -> Iterator[SampleApi]:
    with SampleApi(rows=3, token="right-token") as api:
        yield api


class World:
    def __init__(self, api: SampleApi) -> None:
        self.api = api

    def group(self) -> str:
        return make_group()

    def destination(self) -> str:
        group_id = make_group()
        body = {"group_id": group_id, "service": "duckdb", "config": {"path": f"lake/{group_id}.duckdb"}}
        assert call("create_destination", body=body).status == 201
        return group_id

    def connection(self, group_id: str | None = None, **body: Any) -> str:
        return str(make_connection(group_id or make_group(), **body)["id"])

    def reachable_connection(self) -> str:
        body = {
            "group_id": make_group(),
            "service": "rest_api",
            "config": sample_api_config(self.api.url, "right-token"),
            "run_setup_tests": False,
        }
        reply = call("create_connection", body=body)
        assert reply.status == 201, reply.body
        return str(reply.data["id"])

    def webhook(self) -> str:
        body = {"url": self.api.url + "/hook", "events": ["sync_end"], "active": False}
        reply = call("create_account_webhook", body=body)
        assert reply.status == 200, reply.body
        return str(reply.data["id"])

    def with_state(self) -> str:
        connection_id = self.connection(paused=True)
        reply = call("update_connection_state", path=f"{C}/{connection_id}/state", body={"state": {"c": 1}})
        assert reply.status == 200, reply.body
        return connection_id

    def syncing(self) -> str:
        connection_id = self.connection()
        store = get_store()

        def hold(connection: Any) -> Any:
            lease = utc_now() + timedelta(minutes=10)
            return connection.model_copy(update={"active_sync_id": "sync1", "lease_expires_at": lease})

        store.modify_connection(None, connection_id, hold)
        return connection_id

    def with_columns(self, blocked: bool = False) -> str:
        """A connection whose table `orders` has had columns id and email (email disabled if `blocked`)."""
        from sluice.storage.sync_store import SyncStore

        connection_id = self.connection()
        SyncStore(get_store()).add_columns(connection_id, {"orders": {"id", "email"}})
        if blocked:
            path = f"{C}/{connection_id}/schemas/shop/tables/orders/columns/email"
            event = api_event("update_connection_schemas", path=path, body={"enabled": False}, method="PATCH")
            assert invoke("update_connection_schemas", event).status == 200
        return connection_id

    def running_sync(self) -> tuple[str, str]:
        """A connection and the sync running on it (its lease and its run record)."""
        from sluice.storage.sync_store import SyncStore

        connection_id = self.connection()
        syncs = SyncStore(get_store())
        syncs.acquire(connection_id, "sync1", utc_now(), timedelta(minutes=10))
        assert syncs.start_run(connection_id, "sync1", utc_now(), "api")
        return connection_id, "sync1"

    def ended_sync(self) -> tuple[str, str]:
        connection_id, sync_id = self.running_sync()
        reply = call("cancel_connection_sync", path=f"{C}/{connection_id}/syncs/{sync_id}/cancel")
        assert reply.status == 200, reply.body
        return connection_id, sync_id

    def certificate(self) -> CertFiles:
        return self_signed(Path(tempfile.mkdtemp(prefix="sluice-cert-")))

    def approved(self, kind: str) -> tuple[str, str]:
        """A connection with an approved certificate or fingerprint, and its hash."""
        connection_id = self.connection()
        if kind == "certificates":
            cert = self.certificate()
            body = {"hash": cert.hash, "encoded_cert": cert.encoded}
        else:
            public_key, hash_ = ssh_public_key()
            body = {"hash": hash_, "public_key": public_key}
        reply = call("approve_connection_trust", path=f"{C}/{connection_id}/{kind}", body=body)
        assert reply.status == 201, reply.body
        return connection_id, body["hash"]

    def proxy_agent(self) -> tuple[str, str]:
        """A proxy agent's id and display name."""
        name = new_id()
        body = {"display_name": name, "proxy_url": "http://127.0.0.1:3128"}
        reply = call("create_proxy_agent", path="/v1/proxy", body=body)
        assert reply.status == 201, reply.body
        return str(reply.data["agent_id"]), name

    def proxied_connection(self) -> str:
        """A proxy agent that a connection uses (its id)."""
        agent_id, _ = self.proxy_agent()
        self.connection(networking_method="ProxyAgent", proxy_agent_id=agent_id)
        return agent_id

    def card_query(self, connection_id: str) -> dict[str, str]:
        reply = call("create_connect_card", path=f"{C}/{connection_id}/connect-card", body={})
        assert reply.status == 200, reply.body
        return query_of(reply.data["connect_card"]["uri"])


def _create_connection(w: World, **changes: Any) -> Request:
    body = {
        "group_id": w.group(),
        "service": "rest_api",
        "config": rest_api_config(),
        "run_setup_tests": False,
        **changes,
    }
    return Request(C, body=body)


def _duplicate_connection(w: World) -> Request:
    group_id = w.group()
    w.connection(group_id)
    return _create_connection(w, group_id=group_id, config=rest_api_config(base_url="https://x.example.com"))


def _duplicate_destination(w: World) -> Request:
    group_id = w.destination()
    return Request(
        "/v1/destinations", body={"group_id": group_id, "service": "duckdb", "config": {"path": "b"}}
    )


def _group_in_use(w: World) -> Request:
    group_id = w.group()
    w.connection(group_id)
    return Request(f"/v1/groups/{group_id}")


def _destination_in_use(w: World) -> Request:
    group_id = w.destination()
    w.connection(group_id)
    return Request(f"/v1/destinations/{group_id}")


def _upload(path: str, data: bytes | None = None) -> Request:
    body, content_type = multipart(zip_connector("generator_style") if data is None else data)
    return Request(path, raw_body=base64.b64encode(body).decode(), headers=upload_headers(content_type))


def _package(w: World) -> str:
    reply = upload(zip_connector("generator_style"))
    assert reply.status == 201, reply.body
    return str(reply.data["id"])


def _package_in_use(w: World) -> Request:
    package_id = _package(w)
    make_sdk_connection(w.group(), package_id)
    return Request(f"{PACKAGES}/{package_id}")


PACKAGES = "/v1/connector-sdk/packages"


def _own_api_key(w: World) -> Request:
    from sluice.accounts.api_keys import create_api_key
    from tests.support.api_events import DEFAULT

    key = create_api_key(get_store(), account_id=DEFAULT.account_id)
    return Request(f"/v1/api-keys/{key.api_key}")


# (method, path) -> {status: scenario}; 401 is every authenticated scenario's success request, sent
# without credentials.
Scenario = Callable[[World], Request]


def _trust_scenarios(kind: str) -> list[tuple[str, str, dict[int, Scenario]]]:
    def approval(w: World) -> dict[str, str]:
        if kind == "certificates":
            cert = w.certificate()
            return {"hash": cert.hash, "encoded_cert": cert.encoded}
        public_key, hash_ = ssh_public_key()
        return {"hash": hash_, "public_key": public_key}

    def one(w: World) -> Request:
        connection_id, hash_ = w.approved(kind)
        return Request(f"{C}/{connection_id}/{kind}/{hash_}")

    return [
        (
            "GET",
            "",
            {
                200: lambda w: Request(f"{C}/{w.approved(kind)[0]}/{kind}"),
                400: lambda w: Request(f"{C}/{w.connection()}/{kind}", query={"limit": "0"}),
                404: lambda w: Request(f"{C}/nope/{kind}"),
            },
        ),
        (
            "POST",
            "",
            {
                201: lambda w: Request(f"{C}/{w.connection()}/{kind}", body=approval(w)),
                400: lambda w: Request(f"{C}/{w.connection()}/{kind}", body={**approval(w), "hash": "x"}),
                404: lambda w: Request(f"{C}/nope/{kind}", body=approval(w)),
            },
        ),
        ("GET", "/{hash}", {200: one, 404: lambda w: Request(f"{C}/{w.connection()}/{kind}/nope")}),
        ("DELETE", "/{hash}", {200: one, 404: lambda w: Request(f"{C}/{w.connection()}/{kind}/nope")}),
    ]


SCENARIOS: dict[tuple[str, str], dict[int, Scenario]] = {
    ("DELETE", "/v1/api-keys/{api_key}"): {
        200: _own_api_key,
        404: lambda w: Request("/v1/api-keys/nope"),
    },
    ("POST", "/v1/webhooks/account"): {
        200: lambda w: Request(
            "/v1/webhooks/account", body={"url": w.api.url + "/hook", "events": ["sync_end"], "active": False}
        ),
        400: lambda w: Request(
            "/v1/webhooks/account", body={"url": "http://x.example", "events": ["sync_end"]}
        ),
    },
    ("POST", "/v1/webhooks/group/{group_id}"): {
        200: lambda w: Request(
            f"/v1/webhooks/group/{w.group()}",
            body={"url": w.api.url + "/hook", "events": ["sync_end"], "active": False},
        ),
        400: lambda w: Request(f"/v1/webhooks/group/{w.group()}", body={"url": w.api.url, "events": ["x"]}),
        404: lambda w: Request(
            "/v1/webhooks/group/nope",
            body={"url": w.api.url + "/hook", "events": ["sync_end"], "active": False},
        ),
    },
    ("GET", "/v1/webhooks"): {
        200: lambda w: Request("/v1/webhooks"),
        400: lambda w: Request("/v1/webhooks", query={"limit": "0"}),
    },
    ("GET", "/v1/webhooks/{webhook_id}"): {
        200: lambda w: Request(f"/v1/webhooks/{w.webhook()}"),
        404: lambda w: Request("/v1/webhooks/nope"),
    },
    ("PATCH", "/v1/webhooks/{webhook_id}"): {
        200: lambda w: Request(f"/v1/webhooks/{w.webhook()}", body={"events": ["sync_start"]}),
        400: lambda w: Request(f"/v1/webhooks/{w.webhook()}", body={"events": ["nope"]}),
        404: lambda w: Request("/v1/webhooks/nope", body={"events": ["sync_start"]}),
    },
    ("DELETE", "/v1/webhooks/{webhook_id}"): {
        200: lambda w: Request(f"/v1/webhooks/{w.webhook()}"),
        404: lambda w: Request("/v1/webhooks/nope"),
    },
    ("POST", "/v1/webhooks/{webhook_id}/test"): {
        200: lambda w: Request(f"/v1/webhooks/{w.webhook()}/test", body={"event": "sync_end"}),
        400: lambda w: Request(f"/v1/webhooks/{w.webhook()}/test", body={"event": "nope"}),
        404: lambda w: Request("/v1/webhooks/nope/test", body={"event": "sync_end"}),
    },
    ("POST", "/v1/groups"): {
        201: lambda w: Request("/v1/groups", body={"name": "team"}),
        400: lambda w: Request("/v1/groups", body={"name": "not a name"}),
    },
    ("GET", "/v1/groups"): {
        200: lambda w: Request("/v1/groups"),
        400: lambda w: Request("/v1/groups", query={"limit": "0"}),
    },
    ("GET", "/v1/groups/{group_id}"): {
        200: lambda w: Request(f"/v1/groups/{w.group()}"),
        404: lambda w: Request("/v1/groups/nope"),
    },
    ("PATCH", "/v1/groups/{group_id}"): {
        200: lambda w: Request(f"/v1/groups/{w.group()}", body={"name": "renamed"}),
        400: lambda w: Request(f"/v1/groups/{w.group()}", body={"nam": "x"}),
        404: lambda w: Request("/v1/groups/nope", body={"name": "renamed"}),
    },
    ("DELETE", "/v1/groups/{group_id}"): {
        200: lambda w: Request(f"/v1/groups/{w.group()}"),
        404: lambda w: Request("/v1/groups/nope"),
        409: _group_in_use,
    },
    ("POST", "/v1/destinations"): {
        201: lambda w: Request(
            "/v1/destinations", body={"group_id": w.group(), "service": "duckdb", "config": {"path": "a"}}
        ),
        400: lambda w: Request("/v1/destinations", body={"group_id": w.group(), "service": "oracle"}),
        404: lambda w: Request(
            "/v1/destinations", body={"group_id": "nope", "service": "duckdb", "config": {"path": "a"}}
        ),
        409: _duplicate_destination,
    },
    ("GET", "/v1/destinations/{destination_id}"): {
        200: lambda w: Request(f"/v1/destinations/{w.destination()}"),
        404: lambda w: Request("/v1/destinations/nope"),
    },
    ("PATCH", "/v1/destinations/{destination_id}"): {
        200: lambda w: Request(f"/v1/destinations/{w.destination()}", body={"time_zone_offset": "+1"}),
        400: lambda w: Request(f"/v1/destinations/{w.destination()}", body={"service": "s3"}),
        404: lambda w: Request("/v1/destinations/nope", body={}),
    },
    ("DELETE", "/v1/destinations/{destination_id}"): {
        200: lambda w: Request(f"/v1/destinations/{w.destination()}"),
        404: lambda w: Request("/v1/destinations/nope"),
        409: _destination_in_use,
    },
    ("POST", "/v1/destinations/{destination_id}/test"): {
        200: lambda w: Request(f"/v1/destinations/{w.destination()}/test"),
        400: lambda w: Request(f"/v1/destinations/{w.destination()}/test", body={"trust": True}),
        404: lambda w: Request("/v1/destinations/nope/test"),
    },
    ("GET", "/v1/users"): {200: lambda w: Request("/v1/users")},
    ("GET", "/v1/users/{user_id}"): {
        200: lambda w: Request(f"/v1/users/{DEFAULT.user_id}"),
        404: lambda w: Request("/v1/users/nope"),
    },
    ("GET", "/v1/account/info"): {200: lambda w: Request("/v1/account/info")},
    ("POST", C): {
        201: _create_connection,
        400: lambda w: _create_connection(w, sync_frequency=7),
        404: lambda w: _create_connection(w, group_id="nope"),
        409: _duplicate_connection,
    },
    ("GET", C): {
        200: lambda w: Request(C, query={"group_id": w.group()}),
        400: lambda w: Request(C, query={"limit": "5000"}),
        404: lambda w: Request(C, query={"group_id": "nope"}),
    },
    ("GET", "/v1/groups/{group_id}/connections"): {
        200: lambda w: Request(f"/v1/groups/{w.group()}/connections"),
        400: lambda w: Request(f"/v1/groups/{w.group()}/connections", query={"cursor": "garbage"}),
        404: lambda w: Request("/v1/groups/nope/connections"),
    },
    ("GET", C + "/{connection_id}"): {
        200: lambda w: Request(f"{C}/{w.connection()}"),
        404: lambda w: Request(f"{C}/nope"),
    },
    ("PATCH", C + "/{connection_id}"): {
        200: lambda w: Request(f"{C}/{w.connection()}", body={"paused": True}),
        400: lambda w: Request(f"{C}/{w.connection()}", body={"pasued": True}),
        404: lambda w: Request(f"{C}/nope", body={"paused": True}),
    },
    ("DELETE", C + "/{connection_id}"): {
        200: lambda w: Request(f"{C}/{w.connection()}"),
        404: lambda w: Request(f"{C}/nope"),
    },
    ("POST", C + "/{connection_id}/sync"): {
        200: lambda w: Request(f"{C}/{w.connection()}/sync", body={"force": False}),
        400: lambda w: Request(f"{C}/{w.connection()}/sync", body={"force": "always"}),
        404: lambda w: Request(f"{C}/nope/sync"),
    },
    ("POST", C + "/{connection_id}/force"): {
        200: lambda w: Request(f"{C}/{w.connection()}/force"),
        404: lambda w: Request(f"{C}/nope/force"),
    },
    ("POST", C + "/{connection_id}/resync"): {
        200: lambda w: Request(f"{C}/{w.connection()}/resync"),
        400: lambda w: Request(f"{C}/{w.connection()}/resync", body={"scope": {"shop": ["nope"]}}),
        404: lambda w: Request(f"{C}/nope/resync"),
        409: lambda w: Request(f"{C}/{w.syncing()}/resync"),
    },
    ("POST", C + "/{connection_id}/schemas/tables/resync"): {
        200: lambda w: Request(f"{C}/{w.connection()}/schemas/tables/resync", body={"shop": ["orders"]}),
        400: lambda w: Request(f"{C}/{w.connection()}/schemas/tables/resync", body={}),
        404: lambda w: Request(f"{C}/nope/schemas/tables/resync", body={"shop": ["orders"]}),
    },
    ("POST", C + "/{connection_id}/schemas/{schema}/tables/{table}/resync"): {
        200: lambda w: Request(f"{C}/{w.connection()}/schemas/shop/tables/orders/resync"),
        400: lambda w: Request(f"{C}/{w.connection()}/schemas/shop/tables/nope/resync"),
        404: lambda w: Request(f"{C}/nope/schemas/shop/tables/orders/resync"),
    },
    ("GET", C + "/{connection_id}/state"): {
        200: lambda w: Request(f"{C}/{w.with_state()}/state"),
        400: lambda w: Request(f"{C}/{w.connection()}/state"),
        404: lambda w: Request(f"{C}/nope/state"),
    },
    ("PATCH", C + "/{connection_id}/state"): {
        200: lambda w: Request(f"{C}/{w.connection(paused=True)}/state", body={"state": {"c": 2}}),
        400: lambda w: Request(f"{C}/{w.connection(paused=True)}/state", body={"state": "c"}),
        404: lambda w: Request(f"{C}/nope/state", body={"state": {}}),
        409: lambda w: Request(f"{C}/{w.connection()}/state", body={"state": {"c": 2}}),
    },
    ("GET", C + "/{connection_id}/syncs"): {
        200: lambda w: Request(f"{C}/{w.running_sync()[0]}/syncs"),
        400: lambda w: Request(f"{C}/{w.connection()}/syncs", query={"limit": "0"}),
        404: lambda w: Request(f"{C}/nope/syncs"),
    },
    ("GET", C + "/{connection_id}/syncs/{sync_id}"): {
        200: lambda w: Request("{}/{}/syncs/{}".format(C, *w.running_sync())),
        404: lambda w: Request(f"{C}/{w.connection()}/syncs/nope"),
    },
    ("POST", C + "/{connection_id}/syncs/{sync_id}/cancel"): {
        200: lambda w: Request("{}/{}/syncs/{}/cancel".format(C, *w.running_sync())),
        404: lambda w: Request(f"{C}/nope/syncs/sync1/cancel"),
        409: lambda w: Request("{}/{}/syncs/{}/cancel".format(C, *w.ended_sync())),
    },
    ("POST", C + "/{connection_id}/sync/cancel"): {
        200: lambda w: Request(f"{C}/{w.running_sync()[0]}/sync/cancel"),
        404: lambda w: Request(f"{C}/nope/sync/cancel"),
        409: lambda w: Request(f"{C}/{w.connection()}/sync/cancel"),
    },
    ("GET", C + "/{connection_id}/schemas"): {
        200: lambda w: Request(f"{C}/{w.connection()}/schemas"),
        404: lambda w: Request(f"{C}/nope/schemas"),
    },
    ("GET", C + "/{connection_id}/schemas/{schema}/tables/{table}/columns"): {
        200: lambda w: Request(f"{C}/{w.connection()}/schemas/shop/tables/orders/columns"),
        404: lambda w: Request(f"{C}/{w.connection()}/schemas/shop/tables/nope/columns"),
    },
    ("POST", C + "/{connection_id}/schemas"): {
        200: lambda w: Request(
            f"{C}/{w.connection()}/schemas", body={"schemas": {"shop": {"enabled": True}}}
        ),
        400: lambda w: Request(f"{C}/{w.connection()}/schemas", body={"schema_change_handling": "SOME"}),
        404: lambda w: Request(f"{C}/nope/schemas", body={}),
        409: lambda w: Request(f"{C}/{w.with_columns(blocked=True)}/schemas", body={}),
    },
    ("PATCH", C + "/{connection_id}/schemas"): {
        200: lambda w: Request(f"{C}/{w.connection()}/schemas", body={"schema_change_handling": "BLOCK_ALL"}),
        400: lambda w: Request(f"{C}/{w.connection()}/schemas", body={"schemas": {"shop": {"enabled": [1]}}}),
        404: lambda w: Request(
            f"{C}/{w.connection()}/schemas", body={"schemas": {"nope": {"enabled": True}}}
        ),
    },
    ("POST", C + "/{connection_id}/schemas/reload"): {
        200: lambda w: Request(f"{C}/{w.connection()}/schemas/reload", body={"exclude_mode": "PRESERVE"}),
        400: lambda w: Request(f"{C}/{w.connection()}/schemas/reload", body={"exclude_mode": "ALL"}),
        404: lambda w: Request(f"{C}/nope/schemas/reload", body={}),
    },
    ("POST", C + "/{connection_id}/schemas/drop-columns"): {
        200: lambda w: Request(
            f"{C}/{w.with_columns(blocked=True)}/schemas/drop-columns",
            body={"schemas": {"shop": {"tables": {"orders": {"columns": ["email"]}}}}},
        ),
        400: lambda w: Request(f"{C}/{w.connection()}/schemas/drop-columns", body={"schemas": []}),
        404: lambda w: Request(
            f"{C}/{w.connection()}/schemas/drop-columns",
            body={"schemas": {"shop": {"tables": {"nope": {"columns": ["email"]}}}}},
        ),
        409: lambda w: Request(
            f"{C}/{w.with_columns()}/schemas/drop-columns",
            body={"schemas": {"shop": {"tables": {"orders": {"columns": ["email"]}}}}},
        ),
    },
    ("PATCH", C + "/{connection_id}/schemas/{schema}"): {
        200: lambda w: Request(f"{C}/{w.connection()}/schemas/shop", body={"enabled": True}),
        400: lambda w: Request(f"{C}/{w.connection()}/schemas/shop", body={"tables": []}),
        404: lambda w: Request(f"{C}/{w.connection()}/schemas/nope", body={"enabled": True}),
    },
    ("PATCH", C + "/{connection_id}/schemas/{schema}/tables/{table}"): {
        200: lambda w: Request(f"{C}/{w.connection()}/schemas/shop/tables/orders", body={"enabled": False}),
        400: lambda w: Request(f"{C}/{w.connection()}/schemas/shop/tables/orders", body={"sync_mode": "X"}),
        404: lambda w: Request(f"{C}/{w.connection()}/schemas/shop/tables/nope", body={"enabled": True}),
    },
    ("PATCH", C + "/{connection_id}/schemas/{schema}/tables/{table}/columns/{column}"): {
        200: lambda w: Request(f"{C}/{w.with_columns()}/schemas/shop/tables/orders/columns/email", body={}),
        400: lambda w: Request(
            f"{C}/{w.with_columns()}/schemas/shop/tables/orders/columns/id", body={"enabled": False}
        ),
        404: lambda w: Request(f"{C}/{w.connection()}/schemas/shop/tables/orders/columns/nope", body={}),
    },
    ("DELETE", C + "/{connection_id}/schemas/{schema}/tables/{table}/columns/{column}"): {
        200: lambda w: Request(
            f"{C}/{w.with_columns(blocked=True)}/schemas/shop/tables/orders/columns/email"
        ),
        404: lambda w: Request(f"{C}/{w.connection()}/schemas/shop/tables/orders/columns/nope"),
        409: lambda w: Request(f"{C}/{w.with_columns()}/schemas/shop/tables/orders/columns/email"),
    },
    ("POST", C + "/{connection_id}/test"): {
        200: lambda w: Request(f"{C}/{w.reachable_connection()}/test"),
        400: lambda w: Request(f"{C}/{w.connection()}/test", body={"trust_certificates": "yes please"}),
        404: lambda w: Request(f"{C}/nope/test"),
    },
    **{
        (method, C + "/{connection_id}/" + kind + suffix): scenarios
        for kind in ("certificates", "fingerprints")
        for method, suffix, scenarios in _trust_scenarios(kind)
    },
    ("POST", C + "/{connection_id}/connect-card"): {
        200: lambda w: Request(f"{C}/{w.connection()}/connect-card"),
        400: lambda w: Request(f"{C}/{w.connection()}/connect-card", body={"redirect_uri": "ftp://x"}),
        404: lambda w: Request(f"{C}/nope/connect-card"),
    },
    ("GET", "/v1/groups/{group_id}/public-key"): {
        200: lambda w: Request(f"/v1/groups/{w.group()}/public-key"),
        404: lambda w: Request("/v1/groups/nope/public-key"),
    },
    ("POST", "/v1/proxy"): {
        201: lambda w: Request(
            "/v1/proxy", body={"display_name": new_id(), "proxy_url": "http://127.0.0.1:3128"}
        ),
        400: lambda w: Request("/v1/proxy", body={"display_name": "office"}),
        409: lambda w: Request(
            "/v1/proxy", body={"display_name": w.proxy_agent()[1], "proxy_url": "http://h:1"}
        ),
    },
    ("GET", "/v1/proxy"): {
        200: lambda w: Request("/v1/proxy"),
        400: lambda w: Request("/v1/proxy", query={"limit": "0"}),
    },
    ("GET", "/v1/proxy/{agent_id}"): {
        200: lambda w: Request(f"/v1/proxy/{w.proxy_agent()[0]}"),
        404: lambda w: Request("/v1/proxy/nope"),
    },
    ("DELETE", "/v1/proxy/{agent_id}"): {
        200: lambda w: Request(f"/v1/proxy/{w.proxy_agent()[0]}"),
        404: lambda w: Request("/v1/proxy/nope"),
        409: lambda w: Request(f"/v1/proxy/{w.proxied_connection()}"),
    },
    ("GET", "/v1/metadata/connector-types"): {
        200: lambda w: Request("/v1/metadata/connector-types"),
        400: lambda w: Request("/v1/metadata/connector-types", query={"limit": "0"}),
    },
    ("GET", "/v1/metadata/connector-types/{service}"): {
        200: lambda w: Request("/v1/metadata/connector-types/rest_api"),
        404: lambda w: Request("/v1/metadata/connector-types/nope"),
    },
    ("GET", "/v1/metadata/connectors/{connection_id}/tables"): {
        200: lambda w: Request(f"/v1/metadata/connectors/{w.connection()}/tables"),
        404: lambda w: Request("/v1/metadata/connectors/nope/tables"),
    },
    ("GET", "/v1/metadata/connectors/{connection_id}/columns"): {
        200: lambda w: Request(f"/v1/metadata/connectors/{w.connection()}/columns"),
        404: lambda w: Request("/v1/metadata/connectors/nope/columns"),
    },
    ("POST", PACKAGES): {
        201: lambda w: _upload(PACKAGES),
        400: lambda w: _upload(PACKAGES, b"not a zip"),
    },
    ("GET", PACKAGES): {
        200: lambda w: Request(PACKAGES),
        400: lambda w: Request(PACKAGES, query={"limit": "0"}),
    },
    ("GET", PACKAGES + "/{package_id}"): {
        200: lambda w: Request(f"{PACKAGES}/{_package(w)}"),
        404: lambda w: Request(f"{PACKAGES}/nope"),
    },
    ("PATCH", PACKAGES + "/{package_id}"): {
        200: lambda w: _upload(f"{PACKAGES}/{_package(w)}"),
        400: lambda w: _upload(f"{PACKAGES}/{_package(w)}", b"not a zip"),
        404: lambda w: _upload(f"{PACKAGES}/nope"),
    },
    ("DELETE", PACKAGES + "/{package_id}"): {
        200: lambda w: Request(f"{PACKAGES}/{_package(w)}"),
        404: lambda w: Request(f"{PACKAGES}/nope"),
        409: _package_in_use,
    },
    ("GET", "/v1/connector-sdk/migration/connections"): {
        200: lambda w: Request("/v1/connector-sdk/migration/connections"),
        400: lambda w: Request("/v1/connector-sdk/migration/connections", query={"limit": "0"}),
    },
}


# ---- the hosted page answers HTML, through its own events --------------------------------------------


def _page(w: World, method: str, status: int) -> Any:
    if method == "GET":
        return get_page(w.card_query(w.connection()) if status == 200 else {})
    if status == 401:
        return post_page({"csrf": "x"})
    query = w.card_query(w.reachable_connection())
    if status == 415:
        return invoke_page(
            page_event("POST", query, {"auth": query["auth"]}, content_type="application/json")
        )
    form = get_page(query).form()
    if status == 403:
        form["csrf"] = "forged"
    return post_page(form, query)


# ---- the runner ----------------------------------------------------------------------------------------


def documented() -> list[tuple[str, str, str]]:
    return [
        (method.upper(), path, status)
        for path, operations in DOCUMENT["paths"].items()
        for method, operation in operations.items()
        for status in operation["responses"]
    ]


def _operations() -> list[tuple[str, str]]:
    return sorted({(method, path) for method, path, _ in documented()})


def _aliased(path: str) -> str:
    parts = path.split("/")
    for i in (2, 4):
        if len(parts) > i and parts[i] == "connections" and (i == 2 or parts[2] == "groups"):
            parts[i] = "connectors"
    return "/".join(parts)


def _schema_of(method: str, path: str, status: str) -> dict[str, Any]:
    response = DOCUMENT["paths"][path][method.lower()]["responses"][status]
    return dict(response["content"])


def _check_body(method: str, path: str, status: str, body: Any) -> None:
    schema = _schema_of(method, path, status)["application/json"]["schema"]
    jsonschema.validate(body, {**schema, "components": DOCUMENT["components"]})


def test_the_document_is_valid_openapi() -> None:
    validate(DOCUMENT)


def test_every_documented_status_has_a_scenario() -> None:
    missing = []
    for method, path, status in documented():
        canonical, _ = canonical_path(path)
        scenarios = SCENARIOS.get((method, canonical), {})
        html = "text/html" in _schema_of(method, path, status)
        if not html and int(status) not in scenarios and not (status == "401" and scenarios):
            missing.append(f"{method} {path} {status}")
    assert missing == []


def test_create_is_201_and_no_operation_documents_422() -> None:
    for method, path, status in documented():
        assert status != "422", f"{method} {path}"
    creates = {(m, p) for m, p, s in documented() if s == "201"}
    assert creates == {
        ("POST", "/v1/groups"),
        ("POST", "/v1/destinations"),
        ("POST", "/v1/connections"),
        ("POST", "/v1/connectors"),
        ("POST", "/v1/connector-sdk/packages"),
        ("POST", "/v1/proxy"),
        *(
            ("POST", f"/v1/{prefix}/{{connection_id}}/{kind}")
            for prefix in ("connections", "connectors")
            for kind in ("certificates", "fingerprints")
        ),
    }


def test_every_connections_route_is_documented_under_connectors_too() -> None:
    for method, path, _ in ROUTES:
        aliased = _aliased(path)
        if aliased != path:
            assert method.lower() in DOCUMENT["paths"][aliased], f"{method} {aliased}"


@pytest.mark.parametrize(("method", "path"), _operations(), ids=lambda v: str(v))
def test_documented_statuses_are_what_requests_get(aws, source, method: str, path: str) -> None:
    world = World(source)
    canonical, aliased = canonical_path(path)
    statuses = [s for m, p, s in documented() if (m, p) == (method, path)]
    if canonical == "/connect-card/setup":
        for status in statuses:
            reply = _page(world, method, int(status))
            assert reply.status == int(status), (method, path, status, reply.body[:300])
            assert reply.headers["Content-Type"].startswith("text/html")
        return
    function = FUNCTIONS[(method, canonical)]
    scenarios = SCENARIOS[(method, canonical)]
    success = next(s for s in scenarios if s < 300)
    for status in statuses:
        scenario = scenarios[success if status == "401" else int(status)]
        request = scenario(world)
        event = api_event(
            function,
            path=_aliased(request.path) if aliased else request.path,
            **({"body": request.body} if request.body is not None else {"raw_body": request.raw_body}),
            query=request.query,
            account=request.account,
            headers=request.headers,
        )
        event["httpMethod"] = method
        if status == "401":
            event["requestContext"].pop("authorizer", None)
        reply = invoke(function, event)
        assert reply.status == int(status), (method, path, status, reply.body)
        _check_body(method, path, status, reply.body)
        if status == "404" and aliased and request.path.startswith(f"{C}/nope"):
            assert reply.body["code"] == "NotFound_Connector"  # the alias's own code


def _optional_bodies() -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, operations in DOCUMENT["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation
        and not operation["requestBody"]["required"]
        and "connectors" not in path
    ]


@pytest.mark.parametrize(("method", "path"), _optional_bodies(), ids=lambda v: str(v))
def test_a_body_documented_optional_may_be_left_out(aws, source, method: str, path: str) -> None:
    scenarios = SCENARIOS[(method, path)]
    success = next(s for s in scenarios if s < 300)
    request = scenarios[success](World(source))
    function = FUNCTIONS[(method, path)]
    event = api_event(function, path=request.path, raw_body=None, query=request.query)
    event["httpMethod"] = method
    reply = invoke(function, event)
    assert reply.status == success, reply.body


def test_a_body_documented_required_is_refused_when_left_out(aws, source) -> None:
    required = [
        (method.upper(), path)
        for path, operations in DOCUMENT["paths"].items()
        for method, operation in operations.items()
        if operation.get("requestBody", {}).get("required") and "connectors" not in path
    ]
    assert required
    for method, path in required:
        request = SCENARIOS[(method, path)][next(s for s in SCENARIOS[(method, path)] if s < 300)](
            World(source)
        )
        function = FUNCTIONS[(method, path)]
        event = api_event(function, path=request.path, raw_body=None)
        event["httpMethod"] = method
        reply = invoke(function, event)
        assert reply.status == 400 and reply.body["code"] == "InvalidInput", (method, path, reply.body)
