"""Setup tests through create, update, POST /test (test_connection) and the setup_tests_worker."""

from __future__ import annotations

import copy
import json

import pytest

from local.functions import load_module
from local.lambda_context import LocalContext
from local.sample_api import SampleApi
from tests.support.api_events import EVENTS, call, make_group
from tests.support.syncing import sample_api_config


@pytest.fixture
def api():
    with SampleApi(rows=30, token="right-token") as server:
        yield server


def create(api_url: str, token: str, **body) -> dict:
    reply = call(
        "create_connection",
        body={
            "group_id": make_group(),
            "service": "rest_api",
            "config": sample_api_config(api_url, token),
            **body,
        },
    )
    assert reply.status == 201, reply.body
    return dict(reply.data)


def test_create_runs_setup_tests_by_default_and_connects(aws, api) -> None:
    data = create(api.url, "right-token")
    assert data["status"]["setup_state"] == "connected"
    assert data["setup_tests"], "setup_tests are returned when they ran"
    assert {t["status"] for t in data["setup_tests"]} <= {"PASSED", "SKIPPED", "WARNING"}
    assert all(set(t) == {"title", "status", "message", "details"} for t in data["setup_tests"])


def test_bad_credentials_leave_a_new_connection_incomplete(aws, api) -> None:
    data = create(api.url, "wrong-token")
    assert data["status"]["setup_state"] == "incomplete"
    failed = [t for t in data["setup_tests"] if t["status"] == "FAILED"]
    assert failed and "wrong-token" not in json.dumps(data)


def test_create_without_setup_tests_returns_no_results(aws, api) -> None:
    data = create(api.url, "right-token", run_setup_tests=False)
    assert "setup_tests" not in data
    assert data["status"]["setup_state"] == "incomplete"


@pytest.mark.parametrize("raw_body", [None, "", "{}"], ids=["missing", "empty", "empty-object"])
def test_post_test_runs_the_tests_with_no_body_as_with_an_empty_object(aws, api, raw_body) -> None:
    # Fivetran's CLI (`connection test`) and fivetran-mcp send no body at all.
    data = create(api.url, "right-token", run_setup_tests=False)
    path = f"/v1/connections/{data['id']}/test"
    reply = call("test_connection", path=path, raw_body=raw_body)
    assert reply.status == 200, reply.body
    assert reply.data["status"]["setup_state"] == "connected"
    assert reply.data["setup_tests"]


def test_a_failure_after_being_connected_is_broken(aws, api) -> None:
    data = create(api.url, "right-token")
    api.token = "rotated-at-the-source"
    reply = call("test_connection", path=f"/v1/connections/{data['id']}/test", body={})
    assert reply.data["status"]["setup_state"] == "broken"


def test_update_with_new_credentials_reruns_the_tests(aws, api) -> None:
    data = create(api.url, "wrong-token")
    reply = call(
        "update_connection",
        path=f"/v1/connections/{data['id']}",
        body={"config": {"auth": {"type": "bearer", "token": "right-token"}}},
    )
    assert reply.status == 200, reply.body
    assert reply.data["status"]["setup_state"] == "connected"


def test_update_keeping_the_masked_secret_tests_with_the_stored_one(aws, api) -> None:
    data = create(api.url, "right-token")
    reply = call(
        "update_connection",
        path=f"/v1/connections/{data['id']}",
        body={"config": {"auth": {"type": "bearer", "token": "******"}}, "run_setup_tests": True},
    )
    assert reply.data["status"]["setup_state"] == "connected"


def test_update_of_schedule_only_does_not_rerun_tests(aws, api) -> None:
    data = create(api.url, "right-token")
    before = len(api.requests)
    call("update_connection", path=f"/v1/connections/{data['id']}", body={"schedule_type": "manual"})
    assert len(api.requests) == before


def test_setup_tests_requested_event_runs_the_tests_for_any_producer(aws, api) -> None:
    data = create(api.url, "right-token", run_setup_tests=False)
    event = copy.deepcopy(json.loads((EVENTS / "setup_tests_worker.json").read_text()))
    event["detail"]["connection_id"] = data["id"]
    module = load_module("functions/setup_tests_worker")
    result = module.lambda_handler(event, LocalContext(function_name="setup_tests_worker"))
    assert result == {"connection_id": data["id"], "setup_state": "connected"}
    got = call("get_connection", path=f"/v1/connections/{data['id']}")
    assert got.data["status"]["setup_state"] == "connected"
    assert got.data["setup_tests"]


def test_setup_tests_event_for_an_unknown_connection_is_dropped(aws) -> None:
    event = copy.deepcopy(json.loads((EVENTS / "setup_tests_worker.json").read_text()))
    module = load_module("functions/setup_tests_worker")
    result = module.lambda_handler(event, LocalContext(function_name="setup_tests_worker"))
    assert result["setup_state"] is None


def test_a_refused_address_fails_with_a_clear_message(aws, monkeypatch) -> None:
    config = sample_api_config("http://10.1.2.3:8080", "t")
    reply = call(
        "create_connection", body={"group_id": make_group(), "service": "rest_api", "config": config}
    )
    assert reply.status == 201
    failed = [t for t in reply.data["setup_tests"] if t["status"] == "FAILED"]
    assert failed and "private" in failed[0]["message"].lower()


def test_results_for_a_rotated_secret_are_not_stored_over_newer_ones(aws, api, table) -> None:
    from sluice.connections.model import SetupTestResult
    from sluice.connections.setup_tests import record

    data = create(api.url, "right-token")
    before = table.get_connection(None, data["id"])
    rotated = call(
        "update_connection",
        path=f"/v1/connections/{data['id']}",
        body={"config": {"auth": {"type": "bearer", "token": "right-token"}}, "run_setup_tests": False},
    )
    assert rotated.status == 200
    # Tests that ran with the old secret finish late: their results must not land.
    stale = [SetupTestResult(title="Authenticating", status="FAILED", message="401")]
    kept = record(table, before, stale)
    assert kept.setup_state == "connected"
    assert table.get_connection(None, data["id"]).setup_state == "connected"
