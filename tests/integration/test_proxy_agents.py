"""Proxy agents (Fivetran's /v1/proxy): registered, listed, read and deleted on the wire go-fivetran
and Terraform's fivetran_proxy_agent use; a ProxyAgent connection's setup tests and syncs go through a
real CONNECT proxy on loopback (which records every tunnel); the outbound guard's refusals still hold."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.sample_api import SampleApi
from sluice.settings import get_settings
from sluice.storage.keys import proxy_agent_key
from tests.support.api_events import DEFAULT, Account, call, make_connection, make_group, rest_api_config
from tests.support.connect_proxy import ConnectProxy
from tests.support.postgres import SUPERUSER, SUPERUSER_PASSWORD
from tests.support.syncing import (
    duckdb_file,
    duckdb_rows,
    make_group_with_duckdb,
    make_rest_connection,
    run_worker,
    sample_api_config,
    sync_event,
)
from tests.support.tls import self_signed

OTHER = Account("acct_other", "user_other")


def create_agent(proxy_url: str = "http://127.0.0.1:3128", account: Account = DEFAULT, **body: Any) -> Any:
    return call(
        "create_proxy_agent",
        path="/v1/proxy",
        body={"display_name": "office", "proxy_url": proxy_url, **body},
        account=account,
    )


def credential(created: dict[str, Any]) -> str:
    pair = f"{created['agent_id']}:{created['auth_token']}".encode()
    return "Basic " + base64.b64encode(pair).decode()


def stored_item(agent_id: str) -> dict[str, Any]:
    table = boto3.resource("dynamodb").Table(get_settings().table_name)
    return dict(table.get_item(Key=proxy_agent_key(agent_id))["Item"])


# ---- the resource ------------------------------------------------------------------------------------


def test_an_agent_is_created_read_listed_and_deleted(aws) -> None:
    created = create_agent(group_region="AWS_EU_WEST_1")
    assert created.status == 201, created.body  # go-fivetran expects exactly 201
    data = created.data
    assert set(data) == {"agent_id", "auth_token", "client_cert", "client_private_key"}
    assert len(data["auth_token"]) >= 32

    got = call("get_proxy_agent", path=f"/v1/proxy/{data['agent_id']}")
    assert got.status == 200
    agent = got.data
    assert agent["id"] == data["agent_id"] and agent["display_name"] == "office"
    assert agent["region"] == "AWS_EU_WEST_1" and agent["account_id"] == "acct_example"
    assert agent["created_by"] == "user_example" and agent["registered_at"].endswith("Z")
    assert agent["proxy_url"] == "http://127.0.0.1:3128" and agent["usage"] == []

    listed = call("list_proxy_agents", path="/v1/proxy")
    assert listed.status == 200
    assert [a["id"] for a in listed.data["items"]] == [data["agent_id"]]
    assert listed.data["next_cursor"] is None

    # The token is shown once: never by a read, a list, or in the table in the clear.
    token = data["auth_token"]
    assert token not in json.dumps(got.body) and token not in json.dumps(listed.body)
    assert token not in json.dumps(stored_item(data["agent_id"]), default=str)

    deleted = call("delete_proxy_agent", path=f"/v1/proxy/{data['agent_id']}")
    assert deleted.status == 200 and "data" not in deleted.body
    assert call("get_proxy_agent", path=f"/v1/proxy/{data['agent_id']}").status == 404
    # The name is free again.
    assert create_agent().status == 201


def test_agents_page_through_a_cursor(aws) -> None:
    ids = [create_agent(display_name=f"office{i}").data["agent_id"] for i in range(3)]
    first = call("list_proxy_agents", path="/v1/proxy", query={"limit": "2"})
    rest = call(
        "list_proxy_agents", path="/v1/proxy", query={"limit": "2", "cursor": first.data["next_cursor"]}
    )
    assert [a["id"] for a in first.data["items"] + rest.data["items"]] == ids
    assert rest.data["next_cursor"] is None


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({"proxy_url": None}, "proxy_url"),
        ({"proxy_url": "https://proxy.example.com:3128"}, "proxy_url"),
        ({"proxy_url": "http://proxy.example.com"}, "proxy_url"),
        ({"proxy_url": "http://ann:secret@proxy.example.com:3128"}, "credentials"),
        ({"group_region": "MARS_NORTH_1"}, "MARS_NORTH_1"),
        ({"display_name": ""}, "display_name"),
    ],
)
def test_bad_input_is_a_400_naming_it(aws, body: dict[str, Any], names: str) -> None:
    reply = create_agent(**body)
    assert reply.status == 400 and reply.body["code"] == "InvalidInput"
    assert names in reply.body["message"]
    assert call("list_proxy_agents", path="/v1/proxy").data["items"] == []


def test_a_taken_name_is_a_409_and_another_account_sees_nothing(aws) -> None:
    agent_id = create_agent().data["agent_id"]
    taken = create_agent()
    assert taken.status == 409 and "same name" in taken.body["message"]
    assert call("get_proxy_agent", path=f"/v1/proxy/{agent_id}", account=OTHER).status == 404
    assert call("list_proxy_agents", path="/v1/proxy", account=OTHER).data["items"] == []
    assert call("delete_proxy_agent", path=f"/v1/proxy/{agent_id}", account=OTHER).status == 404
    # Names are per account.
    assert create_agent(account=OTHER).status == 201


def test_connections_name_only_their_accounts_agents_and_an_agent_in_use_stays(aws) -> None:
    agent_id = create_agent().data["agent_id"]
    group_id = make_group()
    theirs = call(
        "create_connection",
        body={
            "group_id": make_group(account=OTHER),
            "service": "rest_api",
            "config": rest_api_config(),
            "networking_method": "ProxyAgent",
            "proxy_agent_id": agent_id,
            "run_setup_tests": False,
        },
        account=OTHER,
    )
    assert theirs.status == 400 and "proxy_agent_id" in theirs.body["message"]

    connection = make_connection(group_id, networking_method="ProxyAgent", proxy_agent_id=agent_id)
    assert connection["proxy_agent_id"] == agent_id
    usage = call("get_proxy_agent", path=f"/v1/proxy/{agent_id}").data["usage"]
    assert usage == [{"id": connection["id"], "schema": "shop", "service": "rest_api"}]
    in_use = call("delete_proxy_agent", path=f"/v1/proxy/{agent_id}")
    assert in_use.status == 409 and "attached connections" in in_use.body["message"]

    moved = call(
        "update_connection", path=f"/v1/connections/{connection['id']}", body={"proxy_agent_id": "nope"}
    )
    assert moved.status == 400 and "nope" in moved.body["message"]


# ---- traffic through the proxy -----------------------------------------------------------------------


@pytest.fixture
def lake(aws) -> Path:
    return duckdb_file("proxied.duckdb")


def _proxied_connection(api: SampleApi, proxy: ConnectProxy, lake: Path, **body: Any) -> dict[str, Any]:
    created = create_agent(proxy.url).data
    proxy.credential = credential(created)
    return make_rest_connection(
        make_group_with_duckdb(lake.name),
        sample_api_config(api.url, token="t0k3n"),
        networking_method="ProxyAgent",
        proxy_agent_id=created["agent_id"],
        run_setup_tests=True,
        **body,
    )


def test_setup_tests_and_syncs_go_through_the_proxy(aws, lake) -> None:
    with SampleApi(rows=25, token="t0k3n") as api, ConnectProxy() as proxy:
        connection = _proxied_connection(api, proxy, lake)
        assert connection["status"]["setup_state"] == "connected", connection["setup_tests"]
        connecting = next(t for t in connection["setup_tests"] if t["title"] == "Connecting")
        assert f"through the proxy agent {connection['proxy_agent_id']}" in connecting["message"]
        tested = len(proxy.targets())
        assert tested >= 2  # the connecting probe and the table fetch
        assert set(proxy.targets()) == {f"127.0.0.1:{api.port}"}
        # Sluice authenticated with the agent's id and token on every tunnel.
        assert {t.authorization for t in proxy.tunnels} == {proxy.credential}

        result = run_worker(sync_event(connection["id"]))
        assert result["status"] == "SUCCESSFUL", result
        assert len(duckdb_rows(lake)) == 25
        assert len(proxy.targets()) > tested


def test_a_self_signed_source_through_the_proxy_is_approved_then_pinned(aws, lake, tmp_path: Path) -> None:
    cert = self_signed(tmp_path)
    with (
        SampleApi(rows=5, token="t0k3n", certfile=cert.cert, keyfile=cert.key) as api,
        ConnectProxy() as proxy,
    ):
        connection = _proxied_connection(api, proxy, lake, trust_certificates=True)
        assert connection["status"]["setup_state"] == "connected", connection["setup_tests"]
        approved = call("get_connection_trust", path=f"/v1/connections/{connection['id']}/certificates")
        assert [c["hash"] for c in approved.data["items"]] == [cert.hash]
        before = len(proxy.targets())
        assert run_worker(sync_event(connection["id"]))["status"] == "SUCCESSFUL"
        assert len(proxy.targets()) > before and len(duckdb_rows(lake)) == 5


def test_a_proxy_that_refuses_the_credential_fails_the_setup_test_clearly(aws, lake) -> None:
    with SampleApi(rows=1, token="t0k3n") as api, ConnectProxy() as proxy:
        created = create_agent(proxy.url).data
        proxy.credential = "Basic bm90OnRoaXM="  # the proxy was set up with another credential
        connection = make_rest_connection(
            make_group_with_duckdb(lake.name),
            sample_api_config(api.url, token="t0k3n"),
            networking_method="ProxyAgent",
            proxy_agent_id=created["agent_id"],
            run_setup_tests=True,
        )
        connecting = next(t for t in connection["setup_tests"] if t["title"] == "Connecting")
        assert connecting["status"] == "FAILED"
        assert "407" in connecting["message"] and created["agent_id"] in connecting["message"]
        assert created["auth_token"] not in json.dumps(connection)
        assert api.requests == []


# 169.254.170.2 (the ECS credentials address): moto intercepts requests to 169.254.169.254 itself.
@pytest.mark.parametrize("target", ["http://169.254.170.2", "http://10.1.2.3:8080", "own endpoint"])
def test_the_proxy_cannot_reach_what_a_direct_connection_may_not(aws, lake, monkeypatch, target: str) -> None:
    with SampleApi(rows=1, token="t0k3n") as own, ConnectProxy() as proxy:
        if target == "own endpoint":
            monkeypatch.setenv("SLUICE_OWN_ENDPOINTS", f"127.0.0.1:{own.port}")
            get_settings.cache_clear()
            target = own.url
        created = create_agent(proxy.url).data
        proxy.credential = credential(created)
        config = sample_api_config(target, token="t0k3n")
        connection = make_rest_connection(
            make_group_with_duckdb(lake.name),
            config,
            networking_method="ProxyAgent",
            proxy_agent_id=created["agent_id"],
            run_setup_tests=True,
        )
        resolving = connection["setup_tests"][0]
        assert resolving["status"] == "FAILED" and "Refused" in resolving["message"]
        result = run_worker(sync_event(connection["id"]))
        assert result["status"] == "FAILURE_WITH_TASK" and "Refused" in result["message"]
        assert proxy.tunnels == [] and own.requests == []  # nothing was asked of the proxy


def test_a_postgres_source_syncs_through_the_proxy(aws, lake, pg_server, pg_database) -> None:
    pg_server.execute(
        pg_database,
        "CREATE TABLE items (id int PRIMARY KEY, name text)",
        "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 12) g",
    )
    config = {
        "schema": "shop",
        "host": pg_server.host,
        "port": pg_server.port,
        "database": pg_database,
        "user": SUPERUSER,
        "password": SUPERUSER_PASSWORD,
        "update_method": "XMIN",
    }
    with ConnectProxy() as proxy:
        created = create_agent(proxy.url).data
        proxy.credential = credential(created)
        reply = call(
            "create_connection",
            body={
                "group_id": make_group_with_duckdb(lake.name),
                "service": "postgres",
                "config": config,
                "networking_method": "ProxyAgent",
                "proxy_agent_id": created["agent_id"],
                "run_setup_tests": True,
            },
        )
        assert reply.status == 201, reply.body
        assert reply.data["status"]["setup_state"] == "connected", reply.data["setup_tests"]
        tested = len(proxy.targets())
        assert tested >= 1 and set(proxy.targets()) == {f"{pg_server.host}:{pg_server.port}"}
        result = run_worker(sync_event(reply.data["id"]))
        assert result["status"] == "SUCCESSFUL", result
        assert len(duckdb_rows(lake, "shop.items")) == 12
        assert len(proxy.targets()) > tested


def test_a_service_that_cannot_go_through_a_proxy_refuses_it(aws) -> None:
    agent_id = create_agent().data["agent_id"]
    reply = call(
        "create_connection",
        body={
            "group_id": make_group(),
            "service": "s3",
            "config": {"schema": "files", "table": "events", "bucket": "my-bucket"},
            "networking_method": "ProxyAgent",
            "proxy_agent_id": agent_id,
            "run_setup_tests": False,
        },
    )
    assert reply.status == 400 and "not supported by service 's3'" in reply.body["message"]
    assert call("get_proxy_agent", path=f"/v1/proxy/{agent_id}").data["usage"] == []
