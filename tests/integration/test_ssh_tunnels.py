"""SSH tunnels (networking_method SshTunnel) through a real OpenSSH server on loopback: the group's key
(GET /v1/groups/{id}/public-key) authorised on it, its host key recorded by the setup tests and
approved before a sync uses it, a changed host key refused; every request of the setup tests and the
sync goes through the bastion's direct-tcpip channels (read back from sshd's log)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.sample_api import SampleApi
from sluice.settings import get_settings
from sluice.storage.keys import group_ssh_key_key
from tests.support.api_events import Account, call
from tests.support.postgres import SUPERUSER, SUPERUSER_PASSWORD
from tests.support.sshd import Site, Sshd, free_port, host_key_line, new_host_key, require_sshd
from tests.support.syncing import (
    duckdb_file,
    duckdb_rows,
    make_group_with_duckdb,
    make_rest_connection,
    run_worker,
    sample_api_config,
    sync_event,
)
from tests.support.trust import ssh_key_hash

C = "/v1/connections"
OTHER = Account("acct_other", "user_other")


@pytest.fixture(autouse=True)
def _sshd_installed() -> None:
    require_sshd()


@pytest.fixture
def lake(aws) -> Path:
    return duckdb_file("tunnelled.duckdb")


def public_key(group_id: str) -> str:
    reply = call("get_group_public_key", path=f"/v1/groups/{group_id}/public-key")
    assert reply.status == 200, reply.body
    return str(reply.data["public_key"])


def tunnelled_config(api: SampleApi, sshd: Sshd) -> dict[str, Any]:
    return {
        **sample_api_config(api.url, token="t0k3n"),
        "tunnel_host": "127.0.0.1",
        "tunnel_port": sshd.port,
        "tunnel_user": "root",
    }


def test_a_group_has_one_key_pair_and_shows_only_its_public_half(aws) -> None:
    group_id = make_group_with_duckdb("k.duckdb")
    first = public_key(group_id)
    assert first.startswith("ssh-ed25519 AAAA")
    assert public_key(group_id) == first  # made once, then the same
    stored = (
        boto3.resource("dynamodb").Table(get_settings().table_name).get_item(Key=group_ssh_key_key(group_id))
    )
    assert "PRIVATE KEY" not in json.dumps(stored["Item"], default=str)  # encrypted, never in the clear
    theirs = call("get_group_public_key", path=f"/v1/groups/{group_id}/public-key", account=OTHER)
    assert theirs.status == 404 and theirs.body["code"] == "NotFound_Group"


def test_an_ssh_tunnel_connection_needs_its_bastion(aws) -> None:
    group_id = make_group_with_duckdb("b.duckdb")
    reply = call(
        "create_connection",
        body={
            "group_id": group_id,
            "service": "rest_api",
            "config": sample_api_config("https://api.example.com"),
            "networking_method": "SshTunnel",
            "run_setup_tests": False,
        },
    )
    assert reply.status == 400 and "tunnel_host" in reply.body["message"]


def test_setup_tests_record_the_host_key_and_syncs_use_only_an_approved_one(
    aws, lake, tmp_path: Path
) -> None:
    group_id = make_group_with_duckdb(lake.name)
    first_key = new_host_key(tmp_path, "host_one")
    with SampleApi(rows=30, token="t0k3n") as api, Sshd(tmp_path, public_key(group_id), first_key) as sshd:
        created = make_rest_connection(
            group_id, tunnelled_config(api, sshd), networking_method="SshTunnel", run_setup_tests=True
        )
        connection_id = created["id"]
        # Not approved yet: the test says which key, and how to approve it.
        connecting = next(t for t in created["setup_tests"] if t["title"] == "Connecting")
        assert connecting["status"] == "FAILED", created["setup_tests"]
        expected_hash = ssh_key_hash(host_key_line(first_key))
        assert connecting["details"] == {"hash": expected_hash, "public_key": host_key_line(first_key)}
        assert expected_hash in connecting["message"] and "fingerprints" in connecting["message"]
        assert api.requests == []
        refused = run_worker(sync_event(connection_id))
        assert refused["status"] == "FAILURE_WITH_TASK" and expected_hash in refused["message"]

        # Approved as Terraform's fivetran_connector_fingerprints would, from the details.
        approved = call(
            "approve_connection_trust", path=f"{C}/{connection_id}/fingerprints", body=connecting["details"]
        )
        assert approved.status == 201, approved.body
        tested = call("test_connection", path=f"{C}/{connection_id}/test", body={})
        assert tested.data["status"]["setup_state"] == "connected", tested.data["setup_tests"]
        result = run_worker(sync_event(connection_id))
        assert result["status"] == "SUCCESSFUL", result
        assert len(duckdb_rows(lake)) == 30
        # Every request reached the source through the bastion.
        assert set(sshd.tunnels()) == {("127.0.0.1", api.port)}
        assert len(sshd.tunnels()) >= 2

        # The bastion's host key changes: the sync refuses it and names the new one.
        second_key = new_host_key(tmp_path, "host_two")
        port = sshd.port
    with (
        SampleApi(rows=30, token="t0k3n", port=api.port) as api2,
        Sshd(tmp_path, public_key(group_id), second_key, port=port),
    ):
        changed = run_worker(sync_event(connection_id))
        assert changed["status"] == "FAILURE_WITH_TASK"
        assert "changed" in changed["message"]
        assert ssh_key_hash(host_key_line(second_key)) in changed["message"]
        assert api2.requests == []

        # trust_fingerprints on the setup tests approves what the bastion now presents.
        retested = call(
            "test_connection", path=f"{C}/{connection_id}/test", body={"trust_fingerprints": True}
        )
        assert retested.data["status"]["setup_state"] == "connected", retested.data["setup_tests"]
        hashes = [
            f["hash"]
            for f in call("get_connection_trust", path=f"{C}/{connection_id}/fingerprints").data["items"]
        ]
        assert hashes == [expected_hash, ssh_key_hash(host_key_line(second_key))]
        assert run_worker(sync_event(connection_id))["status"] == "SUCCESSFUL"


def test_trust_fingerprints_on_create_approves_and_an_unauthorised_key_is_refused(
    aws, lake, tmp_path: Path
) -> None:
    group_id = make_group_with_duckdb(lake.name)
    host_key = new_host_key(tmp_path, "host")
    with (
        SampleApi(rows=3, token="t0k3n") as api,
        Sshd(
            tmp_path,
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJYvsVXiKv9ZSanpV4ibdZ6KGiDvzb8Yt7EKcxD3I4Mv someone-else",
            host_key,
        ) as sshd,
    ):
        created = make_rest_connection(
            group_id,
            tunnelled_config(api, sshd),
            networking_method="SshTunnel",
            run_setup_tests=True,
            trust_fingerprints=True,
        )
        connecting = next(t for t in created["setup_tests"] if t["title"] == "Connecting")
        assert connecting["status"] == "FAILED"
        assert "refused the login of 'root'" in connecting["message"]
        assert f"/v1/groups/{group_id}/public-key" in connecting["message"]
        assert api.requests == []


@pytest.mark.parametrize("target", ["http://169.254.169.254", "http://169.254.170.2:80", "own endpoint"])
def test_the_tunnel_cannot_reach_the_metadata_range_or_own_endpoints(
    aws, lake, tmp_path: Path, monkeypatch, target: str
) -> None:
    group_id = make_group_with_duckdb(lake.name)
    host_key = new_host_key(tmp_path, "host")
    with SampleApi(rows=1, token="t0k3n") as own, Sshd(tmp_path, public_key(group_id), host_key) as sshd:
        if target == "own endpoint":
            monkeypatch.setenv("SLUICE_OWN_ENDPOINTS", f"127.0.0.1:{own.port}")
            get_settings.cache_clear()
            target = own.url
        config = {**tunnelled_config(own, sshd), "base_url": target}
        created = make_rest_connection(
            group_id, config, networking_method="SshTunnel", run_setup_tests=True, trust_fingerprints=True
        )
        assert created["setup_tests"][0]["status"] == "FAILED"
        assert "Refused" in created["setup_tests"][0]["message"]
        assert sshd.tunnels() == [] and own.requests == []


def test_a_postgres_source_syncs_through_the_bastion(
    aws, lake, tmp_path: Path, pg_server, pg_database
) -> None:
    pg_server.execute(
        pg_database,
        "CREATE TABLE items (id int PRIMARY KEY, name text)",
        "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 9) g",
    )
    group_id = make_group_with_duckdb(lake.name)
    with Sshd(tmp_path, public_key(group_id), new_host_key(tmp_path, "host")) as sshd:
        config = {
            "schema": "shop",
            "host": pg_server.host,
            "port": pg_server.port,
            "database": pg_database,
            "user": SUPERUSER,
            "password": SUPERUSER_PASSWORD,
            "update_method": "XMIN",
            "tunnel_host": "127.0.0.1",
            "tunnel_port": sshd.port,
            "tunnel_user": "root",
        }
        reply = call(
            "create_connection",
            body={
                "group_id": group_id,
                "service": "postgres",
                "config": config,
                "networking_method": "SshTunnel",
                "run_setup_tests": True,
                "trust_fingerprints": True,
            },
        )
        assert reply.status == 201, reply.body
        assert reply.data["status"]["setup_state"] == "connected", reply.data["setup_tests"]
        result = run_worker(sync_event(reply.data["id"]))
        assert result["status"] == "SUCCESSFUL", result
        assert len(duckdb_rows(lake, "shop.items")) == 9
        assert set(sshd.tunnels()) == {(pg_server.host, pg_server.port)}


@contextlib.contextmanager
def source_in(site: Site, port: int, rows: int) -> Iterator[None]:
    """The sample API inside the site's namespace, on its loopback; ready when it says so."""
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        site.inside(
            sys.executable,
            "-m",
            "local.sample_api",
            "--rows",
            str(rows),
            "--port",
            str(port),
            "--token",
            "t0k3n",
            "--quiet",
        ),
        cwd=root,
        env={**os.environ, "PYTHONPATH": f"{root / 'shared'}{os.pathsep}{root}"},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("Sample API"), "the sample API did not start"
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_source_reachable_only_through_the_bastion_syncs(aws, lake, tmp_path: Path) -> None:
    group_id = make_group_with_duckdb(lake.name)
    port = free_port()  # nothing listens there in this namespace
    with (
        Site() as site,
        source_in(site, port, rows=7),
        Sshd(
            tmp_path,
            public_key(group_id),
            new_host_key(tmp_path, "host"),
            listen=site.bastion,
            netns=site.name,
        ) as sshd,
    ):
        config = sample_api_config(f"http://127.0.0.1:{port}", token="t0k3n")
        direct = make_rest_connection(group_id, config, run_setup_tests=True)
        connecting = next(t for t in direct["setup_tests"] if t["title"] == "Connecting")
        assert connecting["status"] == "FAILED" and "refused" in connecting["message"]

        tunnelled = {**config, "schema": "site", "tunnel_host": site.bastion, "tunnel_port": sshd.port}
        created = make_rest_connection(
            group_id,
            {**tunnelled, "tunnel_user": "root"},
            networking_method="SshTunnel",
            run_setup_tests=True,
            trust_fingerprints=True,
        )
        assert created["status"]["setup_state"] == "connected", created["setup_tests"]
        connecting = next(t for t in created["setup_tests"] if t["title"] == "Connecting")
        assert f"through the bastion {site.bastion}" in connecting["message"]
        result = run_worker(sync_event(created["id"]))
        assert result["status"] == "SUCCESSFUL", result
        assert len(duckdb_rows(lake, "site.items")) == 7
        assert set(sshd.tunnels()) == {("127.0.0.1", port)}


def test_moving_the_tunnel_brings_the_secrets_again(aws) -> None:
    group_id = make_group_with_duckdb("m.duckdb")
    config = {**sample_api_config("https://api.example.com", token="t0k3n"), "tunnel_host": "203.0.113.9"}
    connection = make_rest_connection(
        group_id, {**config, "tunnel_user": "root"}, networking_method="SshTunnel"
    )
    path = f"{C}/{connection['id']}"
    moved = call("update_connection", path=path, body={"config": {"tunnel_host": "bastion.example.com"}})
    assert moved.status == 400 and "tunnel_host" in moved.body["message"]
    with_secret = call(
        "update_connection",
        path=path,
        body={
            "config": {"tunnel_host": "bastion.example.com", "auth": {"type": "bearer", "token": "t0k3n"}},
            "run_setup_tests": False,
        },
    )
    assert with_secret.status == 200, with_secret.body
    assert with_secret.data["config"]["tunnel_host"] == "bastion.example.com"
