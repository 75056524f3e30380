"""Issue 17: the local stack keeps its control plane under its data folder across restarts (keys, groups,
destinations, connections with their encrypted secrets, state, run records), `--fresh` starts from
nothing, and a sync stopped midway by Ctrl-C continues when the stack is started again."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from local.sample_api import SampleApi, config_for
from tests.support.gated_source import GatedSource
from tests.support.local_stack import LocalStackProcess, start_local_stack, wait_for_sync

pytestmark = pytest.mark.e2e


@pytest.fixture
def key() -> tuple[str, str]:
    return "keep-" + secrets.token_hex(4), secrets.token_urlsafe(24)


@pytest.fixture
def stacks() -> Iterator[list[LocalStackProcess]]:
    started: list[LocalStackProcess] = []
    yield started
    for stack in started:
        if stack.process.poll() is None:
            stack.stop()


def start(
    stacks: list[LocalStackProcess], data_dir: Path, key: tuple[str, str], *args: str
) -> LocalStackProcess:
    stack = start_local_stack(data_dir, api_key=key[0], api_secret=key[1], args=args)
    stacks.append(stack)
    return stack


def rows_in(data_dir: Path, table: str) -> int:
    import duckdb

    (path,) = list(data_dir.rglob("default.duckdb"))
    with duckdb.connect(str(path), read_only=True) as db:
        found = db.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(found[0]) if found else 0


def test_the_control_plane_survives_a_restart_and_fresh_forgets_it(
    tmp_path: Path, key: tuple[str, str], stacks: list[LocalStackProcess]
) -> None:
    data_dir = tmp_path / "kept"
    first = start(stacks, data_dir, key)
    other_key, other_secret, _ = first.new_api_key()
    http = first.session()
    schema = "kept_" + uuid.uuid4().hex[:6]
    with SampleApi(rows=20, token="kept-token") as api:
        config = config_for(api.url, "next_link", {"type": "bearer", "token": "kept-token"}, schema, 10)
        created = http.post(
            f"{first.url}/v1/connections",
            json={"group_id": first.group_id, "service": "rest_api", "config": config},
            timeout=60,
        )
        assert created.status_code == 201, created.text
        connection_id = created.json()["data"]["id"]
        assert http.post(f"{first.url}/v1/connections/{connection_id}/sync", json={}, timeout=60).ok
        synced = wait_for_sync(http, f"{first.url}/v1/connections/{connection_id}", None, timeout=120)
        assert synced["failed_at"] is None, synced
        state = http.get(f"{first.url}/v1/connections/{connection_id}/state", timeout=60).json()["data"]
        first.stop()
        assert "kept-token" not in (data_dir / "control-plane.json").read_text()  # encrypted at rest

        second = start(stacks, data_dir, key)
        assert second.group_id == first.group_id
        http = second.session()
        url = f"{second.url}/v1/connections/{connection_id}"
        again = http.get(url, timeout=60)
        assert again.status_code == 200, again.text
        assert again.json()["data"]["succeeded_at"] == synced["succeeded_at"]
        assert http.get(f"{url}/state", timeout=60).json()["data"] == state
        assert requests.get(f"{second.url}/v1/groups", auth=(other_key, other_secret), timeout=60).ok
        # The stored token still decrypts (the KMS key came back): the source accepts the next sync.
        api.update([1])
        assert http.post(f"{url}/sync", json={}, timeout=60).ok
        resynced = wait_for_sync(http, url, synced["succeeded_at"], timeout=120)
        assert resynced["failed_at"] is None, resynced
        second.stop()

    fresh = start(stacks, data_dir, key, "--fresh")
    assert fresh.group_id != first.group_id
    assert fresh.session().get(f"{fresh.url}/v1/connections/{connection_id}", timeout=60).status_code == 404
    assert (
        requests.get(f"{fresh.url}/v1/groups", auth=(other_key, other_secret), timeout=60).status_code == 401
    )


def test_a_sync_stopped_midway_continues_after_a_restart(
    tmp_path: Path, key: tuple[str, str], stacks: list[LocalStackProcess]
) -> None:
    data_dir = tmp_path / "midway"
    first = start(stacks, data_dir, key)
    http = first.session()
    schema = "midway_" + uuid.uuid4().hex[:6]
    with GatedSource(rows=3) as source:
        created = http.post(
            f"{first.url}/v1/connections",
            json={
                "group_id": first.group_id,
                "service": "rest_api",
                "config": config_for(source.url, schema=schema),
                "run_setup_tests": False,
            },
            timeout=60,
        )
        assert created.status_code == 201, created.text
        connection_id = created.json()["data"]["id"]
        assert http.post(f"{first.url}/v1/connections/{connection_id}/sync", json={}, timeout=60).ok
        assert source.entered.wait(60), "the sync never reached the source"
        (started,) = first.events_of(connection_id, "Sync Started")
        first.stop()  # Ctrl-C while the sync is inside the source

        source.open()
        second = start(stacks, data_dir, key)
        assert any("resumed:" in line and connection_id in line for line in second.output), second.output
        (ended,) = second.events_of(connection_id, "Sync Completed")
        assert ended["detail"]["sync_id"] == started["detail"]["sync_id"]  # the same sync, ended once
        assert ended["detail"]["data"]["status"] == "SUCCESSFUL", ended
        assert len(second.events_of(connection_id, "Sync Started")) == 1
        assert rows_in(data_dir, f"{schema}.items") == 3
