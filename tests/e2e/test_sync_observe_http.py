"""Issue 14 over real HTTP against the local stack: a failed sync's reason in `status.tasks` and in
`sync_end`, cleared by the next success; the sync history; cancelling a running sync whose source pages
wait for the test."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from local.sample_api import SampleApi, config_for
from tests.support.local_stack import LocalStackProcess, start_local_stack
from tests.support.paged_gate import PagedGate

PAGE = 10


@pytest.fixture(scope="module")
def checkpointing_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    """A stack whose syncs commit a checkpoint after every page (the default waits a few seconds)."""
    running = start_local_stack(
        tmp_path_factory.mktemp("sluice-observe"), env_extra={"SYNC_COMMIT_EVERY_SECONDS": "0"}
    )
    yield running
    running.stop()


def wait_until(what: str, check: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def finished(http: requests.Session, url: str, previous: str | None) -> dict[str, Any] | None:
    """The connection once max(succeeded_at, failed_at) moved past `previous` (as orchestrators poll)."""
    data = http.get(url).json()["data"]
    latest = max(filter(None, [data["succeeded_at"], data["failed_at"]]), default=None)
    if latest and (previous is None or latest > previous) and data["status"]["sync_state"] != "syncing":
        return dict(data)
    return None


def create(http: requests.Session, stack: LocalStackProcess, config: dict[str, Any]) -> str:
    reply = http.post(
        f"{stack.url}/v1/connections",
        json={"group_id": stack.group_id, "service": "rest_api", "config": config, "run_setup_tests": False},
    )
    assert reply.status_code == 201, reply.text
    return str(reply.json()["data"]["id"])


def test_a_failed_sync_tells_why_in_tasks_history_and_sync_end_until_a_success_clears_it(
    checkpointing_stack: LocalStackProcess,
) -> None:
    stack = checkpointing_stack
    http = stack.session()
    schema = "obs_" + uuid.uuid4().hex[:6]
    with SampleApi(rows=25, token="right-token") as api:
        wrong = config_for(api.url, "next_link", {"type": "bearer", "token": "wrong-token-x"}, schema, PAGE)
        connection_id = create(http, stack, wrong)
        url = f"{stack.url}/v1/connections/{connection_id}"
        assert http.post(f"{url}/sync", json={}).status_code == 200
        failed = wait_until("the sync to fail", lambda: finished(http, url, None))
        assert failed["failed_at"] and failed["succeeded_at"] is None
        [task] = failed["status"]["tasks"]
        assert task["code"] == "source_credentials_refused" and "HTTP 401" in task["details"]
        assert "wrong-token-x" not in json.dumps(failed)
        [end] = stack.events_of(connection_id, "Sync Completed")
        assert end["detail"]["data"]["reason"] == task["details"]
        assert end["detail"]["data"]["taskType"] == "source_credentials_refused"

        fixed = http.patch(url, json={"config": {"auth": {"type": "bearer", "token": "right-token"}}})
        assert fixed.status_code == 200, fixed.text
        assert http.post(f"{url}/sync", json={}).status_code == 200
        succeeded = wait_until("the next sync", lambda: finished(http, url, failed["failed_at"]))
        assert succeeded["succeeded_at"] > succeeded["failed_at"]
        assert succeeded["status"]["tasks"] == [] and succeeded["status"]["warnings"] == []

    history = http.get(f"{stack.url}/v1/connectors/{connection_id}/syncs", params={"limit": 1}).json()
    assert history["code"] == "Success"
    [newest] = history["data"]["items"]
    assert newest["status"] == "SUCCESSFUL" and newest["trigger"] == "api"
    assert newest["tables"] == {"items": {"rows_upserted": 25, "rows_deleted": 0}}
    older = http.get(f"{url}/syncs", params={"cursor": history["data"]["next_cursor"]}).json()["data"]
    [first] = older["items"]
    assert first["status"] == "FAILURE_WITH_TASK" and first["reason_code"] == "source_credentials_refused"
    assert older["next_cursor"] is None
    one = http.get(f"{url}/syncs/{first['id']}").json()["data"]
    assert one == first


def test_cancel_stops_a_running_sync_and_keeps_its_last_checkpoint(
    checkpointing_stack: LocalStackProcess,
) -> None:
    stack = checkpointing_stack
    http = stack.session()
    schema = "cancel_" + uuid.uuid4().hex[:6]
    with PagedGate(pages=3, page_size=PAGE) as gate:
        connection_id = create(http, stack, config_for(gate.url, "next_link", None, schema, PAGE))
        url = f"{stack.url}/v1/connections/{connection_id}"
        assert http.post(f"{url}/sync", json={}).status_code == 200
        gate.release(0)
        gate.wait_requested(1)  # page 0 is written and checkpointed; page 1 waits for us

        def running() -> dict[str, Any] | None:
            items = http.get(f"{url}/syncs").json()["data"]["items"]
            return items[0] if items and items[0]["rows_upserted"] == PAGE else None

        sync = wait_until("the running sync in the history", running)
        assert sync["status"] == "RUNNING"
        reply = http.post(f"{url}/syncs/{sync['id']}/cancel")
        assert reply.status_code == 200, reply.text
        assert reply.json()["data"]["status"] == "CANCELLED"
        after = http.get(url).json()["data"]
        assert after["status"]["sync_state"] == "scheduled" and after["failed_at"] is not None

        gate.release(1)
        # The stack's console line for the worker's invocation is the signal that it stopped.
        stopped = re.compile(re.escape(f"(sync {sync['id']}) stopped: lease lost"))
        wait_until("the worker to stop", lambda: any(stopped.search(line) for line in stack.output))
        assert not gate.requested[2].is_set(), "the cancelled sync read on"
        state = http.get(f"{url}/state").json()["data"]["state"]
        # The last checkpoint is the one after page 0: it goes on at page 1.
        assert state["run"]["max"] == gate.rows(0)[-1]["updated_at"]
        assert state["run"]["next"]["url"].endswith("?page=1")
        record = http.get(f"{url}/syncs/{sync['id']}").json()["data"]
        assert record["status"] == "CANCELLED" and record["rows_upserted"] == PAGE
        ends = stack.events_of(connection_id, "Sync Completed")
        assert [e["detail"]["data"]["status"] for e in ends] == ["CANCELLED"]
        again = http.post(f"{url}/syncs/{sync['id']}/cancel")
        assert again.status_code == 409 and again.json()["code"] == "Conflict"

        gate.release_all()
        assert http.post(f"{url}/sync", json={}).status_code == 200
        done = wait_until("the next sync", lambda: finished(http, url, after["failed_at"]))
        assert done["succeeded_at"] > after["failed_at"]
