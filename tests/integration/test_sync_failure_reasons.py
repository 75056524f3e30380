"""Issue 14 item 1: a failed sync or setup test leaves `status.tasks` (Fivetran's Alert: code, message,
details) with a reason the user can act on, a rate-limited one a warning; the next successful sync
clears both; `sync_end` carries the same reason; no secret appears in any of it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.sample_api import SampleApi
from tests.support.api_events import call
from tests.support.syncing import (
    duckdb_file,
    get_connection,
    make_group_with_duckdb,
    make_rest_connection,
    run_worker,
    sample_api_config,
    sync_event,
)
from tests.support.tls import self_signed

TOKEN = "tok-3f9a-very-secret"
HOLD = """
import sys, duckdb
db = duckdb.connect(sys.argv[1])
print("holding", flush=True)
sys.stdin.read()  # until the test closes our stdin
"""


@pytest.fixture
def api() -> Iterator[SampleApi]:
    with SampleApi(rows=30, token=TOKEN) as server:
        yield server


@pytest.fixture
def group_id(aws) -> str:
    return make_group_with_duckdb("lake.duckdb")


@pytest.fixture
def held_lake(group_id: str) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the group's DuckDB file open (a DuckDB shell, say)."""
    path = duckdb_file("lake.duckdb")
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    yield holder
    release(holder)


def release(holder: subprocess.Popen[str]) -> None:
    if holder.poll() is None:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)


def sync_end_of(bus, sync_id: str) -> dict[str, Any]:
    ends = [
        e["detail"]
        for e in bus.drain()
        if e["detail-type"] == "Sync Completed" and e["detail"]["sync_id"] == sync_id
    ]
    assert len(ends) == 1, ends
    return ends[0]


def test_a_locked_duckdb_file_leaves_a_task_that_says_who_holds_it_and_a_success_clears_it(
    aws, api, group_id, held_lake, bus
) -> None:
    connection = make_rest_connection(group_id, sample_api_config(api.url, token=TOKEN))
    event = sync_event(connection["id"])
    assert run_worker(event)["status"] == "FAILURE_WITH_TASK"
    status = get_connection(connection["id"])["status"]
    assert len(status["tasks"]) == 1
    task = status["tasks"][0]
    assert set(task) == {"code", "message", "details"}
    assert task["code"] == "destination_locked" and task["message"] == "Destination Locked"
    assert f"another process (PID {held_lake.pid})" in task["details"]
    assert "close it there" in task["details"]
    assert str(duckdb_file("lake.duckdb").parent) not in task["details"]  # no server path
    assert status["warnings"] == []
    end = sync_end_of(bus, event["id"])["data"]
    assert end["status"] == "FAILURE_WITH_TASK"
    assert end["reason"] == task["details"] and end["taskType"] == "destination_locked"

    release(held_lake)
    again = sync_event(connection["id"])
    assert run_worker(again)["status"] == "SUCCESSFUL"
    status = get_connection(connection["id"])["status"]
    assert status["tasks"] == [] and status["warnings"] == []
    end = sync_end_of(bus, again["id"])["data"]
    assert end["status"] == "SUCCESSFUL" and "reason" not in end and "taskType" not in end


def test_credentials_the_source_refuses_leave_a_task_without_the_secret(aws, api, group_id, bus) -> None:
    wrong = "tok-wrong-but-still-secret"
    connection = make_rest_connection(group_id, sample_api_config(api.url, token=wrong))
    event = sync_event(connection["id"])
    assert run_worker(event)["status"] == "FAILURE_WITH_TASK"
    body = get_connection(connection["id"])
    assert body["status"]["setup_state"] != "connected"
    [task] = body["status"]["tasks"]
    assert task["code"] == "source_credentials_refused"
    assert "HTTP 401" in task["details"] and "auth.token" in task["details"]
    end = sync_end_of(bus, event["id"])
    assert end["data"]["taskType"] == "source_credentials_refused"
    for text in (json.dumps(body), json.dumps(end)):
        assert wrong not in text and TOKEN not in text


def test_an_untrusted_certificate_leaves_a_task_naming_trust_certificates(
    aws, group_id, tmp_path: Path
) -> None:
    cert = self_signed(tmp_path)
    with SampleApi(rows=3, token=TOKEN, certfile=cert.cert, keyfile=cert.key) as api:
        connection = make_rest_connection(group_id, sample_api_config(api.url, token=TOKEN))
        assert run_worker(sync_event(connection["id"]))["status"] == "FAILURE_WITH_TASK"
    [task] = get_connection(connection["id"])["status"]["tasks"]
    assert task["code"] == "certificate_not_trusted" and task["message"] == "Untrusted Certificate"
    assert "trust_certificates" in task["details"]


def test_a_source_rate_limit_that_outlasts_the_run_is_a_warning_and_a_success_clears_it(
    aws, api, group_id, bus
) -> None:
    connection = make_rest_connection(group_id, sample_api_config(api.url, token=TOKEN))
    api.fail_next(1, status=429, retry_after="3600")
    event = sync_event(connection["id"])
    assert run_worker(event)["status"] == "RESCHEDULED"
    status = get_connection(connection["id"])["status"]
    assert status["tasks"] == []
    [warning] = status["warnings"]
    assert warning["code"] == "source_rate_limited" and "HTTP 429" in warning["details"]
    end = sync_end_of(bus, event["id"])["data"]
    assert end["status"] == "RESCHEDULED" and end["taskType"] == "source_rate_limited"

    assert run_worker(sync_event(connection["id"]))["status"] == "SUCCESSFUL"
    status = get_connection(connection["id"])["status"]
    assert status["tasks"] == [] and status["warnings"] == []


def test_a_failed_setup_test_is_a_task_until_the_tests_pass(aws, api, group_id) -> None:
    connection = make_rest_connection(group_id, sample_api_config(api.url, token="tok-wrong"))
    path = f"/v1/connections/{connection['id']}"
    tested = call("test_connection", path=f"{path}/test", body={})
    assert tested.status == 200, tested.body
    tasks = tested.data["status"]["tasks"]
    assert [t["code"] for t in tasks] == ["setup_test_failed"]
    assert tasks[0]["message"] == "Authenticating" and "HTTP 401" in tasks[0]["details"]
    assert "tok-wrong" not in json.dumps(tested.body)

    auth = {"type": "bearer", "token": TOKEN}
    fixed = call("update_connection", path=path, body={"config": {"auth": auth}})
    assert fixed.status == 200, fixed.body
    tested = call("test_connection", path=f"{path}/test", body={})
    assert tested.data["status"]["setup_state"] == "connected"
    assert tested.data["status"]["tasks"] == []


def test_a_sync_failure_keeps_the_setup_test_task_beside_its_own(aws, api, group_id) -> None:
    connection = make_rest_connection(group_id, sample_api_config(api.url, token="tok-wrong"))
    call("test_connection", path=f"/v1/connections/{connection['id']}/test", body={})
    assert run_worker(sync_event(connection["id"]))["status"] == "FAILURE_WITH_TASK"
    codes = [t["code"] for t in get_connection(connection["id"])["status"]["tasks"]]
    assert codes == ["setup_test_failed", "source_credentials_refused"]
    # A second failure replaces the sync's task rather than piling up another.
    assert run_worker(sync_event(connection["id"]))["status"] == "FAILURE_WITH_TASK"
    codes = [t["code"] for t in get_connection(connection["id"])["status"]["tasks"]]
    assert codes == ["setup_test_failed", "source_credentials_refused"]
