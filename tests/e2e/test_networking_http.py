"""Trust and networking over real HTTP against the local stack, as go-fivetran and Terraform call them:
a self-signed source approved with the certificates route, synced; a proxy agent that a sync goes
through; the group's public key."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

from local.sample_api import SampleApi, config_for
from tests.support.connect_proxy import ConnectProxy
from tests.support.local_stack import LocalStackProcess, wait_for_sync
from tests.support.tls import self_signed


def _config(api: SampleApi) -> dict:
    auth = {"type": "bearer", "token": "t0k3n"}
    return config_for(api.url, "next_link", auth, schema="s_" + uuid.uuid4().hex[:8])


def test_a_self_signed_source_is_approved_over_http_and_synced(
    stack: LocalStackProcess, tmp_path: Path
) -> None:
    http = stack.session()
    cert = self_signed(tmp_path)
    with SampleApi(rows=6, token="t0k3n", certfile=cert.cert, keyfile=cert.key) as api:
        created = http.post(
            f"{stack.url}/v1/connections",
            json={"group_id": stack.group_id, "service": "rest_api", "config": _config(api)},
        )
        assert created.status_code == 201, created.text
        connection = created.json()["data"]
        connecting = next(t for t in connection["setup_tests"] if t["title"] == "Connecting")
        assert connecting["status"] == "FAILED"

        approved = http.post(
            f"{stack.url}/v1/connectors/{connection['id']}/certificates",
            json={
                "hash": connecting["details"]["hash"],
                "encoded_cert": connecting["details"]["encoded_cert"],
            },
        )
        assert approved.status_code == 201, approved.text
        listed = http.get(f"{stack.url}/v1/connections/{connection['id']}/certificates").json()["data"]
        assert [c["hash"] for c in listed["items"]] == [cert.hash]

        tested = http.post(f"{stack.url}/v1/connections/{connection['id']}/test")
        assert tested.json()["data"]["status"]["setup_state"] == "connected", tested.text
        assert http.post(f"{stack.url}/v1/connections/{connection['id']}/sync").status_code == 200
        synced = wait_for_sync(http, f"{stack.url}/v1/connections/{connection['id']}")
        assert synced["succeeded_at"] is not None, synced


def test_a_sync_goes_through_a_proxy_agent_over_http(stack: LocalStackProcess) -> None:
    http = stack.session()
    with SampleApi(rows=4, token="t0k3n") as api, ConnectProxy() as proxy:
        agent = http.post(
            f"{stack.url}/v1/proxy", json={"display_name": "p" + uuid.uuid4().hex[:8], "proxy_url": proxy.url}
        )
        assert agent.status_code == 201, agent.text
        proxy.credential = (
            "Basic "
            + base64.b64encode(
                f"{agent.json()['data']['agent_id']}:{agent.json()['data']['auth_token']}".encode()
            ).decode()
        )
        created = http.post(
            f"{stack.url}/v1/connections",
            json={
                "group_id": stack.group_id,
                "service": "rest_api",
                "config": _config(api),
                "networking_method": "ProxyAgent",
                "proxy_agent_id": agent.json()["data"]["agent_id"],
            },
        )
        assert created.status_code == 201, created.text
        connection = created.json()["data"]
        assert connection["status"]["setup_state"] == "connected", connection["setup_tests"]
        assert http.post(f"{stack.url}/v1/connections/{connection['id']}/sync").status_code == 200
        synced = wait_for_sync(http, f"{stack.url}/v1/connections/{connection['id']}")
        assert synced["succeeded_at"] is not None, synced
        assert set(proxy.targets()) == {f"127.0.0.1:{api.port}"}
        shown = http.get(f"{stack.url}/v1/proxy/{agent.json()['data']['agent_id']}").json()["data"]
        assert [u["id"] for u in shown["usage"]] == [connection["id"]]


def test_the_group_public_key_over_http(stack: LocalStackProcess) -> None:
    reply = stack.session().get(f"{stack.url}/v1/groups/{stack.group_id}/public-key")
    assert reply.status_code == 200, reply.text
    assert reply.json()["data"]["public_key"].startswith("ssh-ed25519 ")
