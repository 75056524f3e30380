"""Issue 9, item 5: every number of a request is bounded. A huge one (1e39) is a clear 400, and a
create either fully happens or does not happen at all (no 500 after saving, no 409 on retry)."""

from __future__ import annotations

from typing import Any

import pytest

from local.sample_api import SampleApi
from tests.support.api_events import call, make_connection, make_group, rest_api_config
from tests.support.syncing import sample_api_config

HUGE = 1e39


def create_body(group_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "group_id": group_id,
        "service": "rest_api",
        "config": rest_api_config(),
        "run_setup_tests": False,
        **fields,
    }


CREATE_CASES = [
    {"data_delay_threshold": HUGE, "data_delay_sensitivity": "CUSTOM"},
    {"data_delay_threshold": HUGE},
    {"data_delay_threshold": 10**40, "data_delay_sensitivity": "CUSTOM"},
    {"data_delay_threshold": -1},
    {"sync_frequency": HUGE},
    {"sync_frequency": 10**40},
    {"daily_sync_time": "1e39:00", "sync_frequency": 1440},
    {"config": rest_api_config(page_size=HUGE)},
    {
        "config": rest_api_config(
            tables=[{"name": "t", "path": "/t", "pagination": {"type": "page", "start_page": 10**40}}]
        )
    },
    {"config": rest_api_config(base_url="https://api.example.com:99999")},
    {"config": rest_api_config(base_url="https://api.example.com:1e39")},
]


@pytest.mark.parametrize("fields", CREATE_CASES, ids=lambda f: ",".join(f"{k}" for k in f))
def test_a_huge_number_at_create_is_a_400_and_nothing_is_saved(aws, fields: dict[str, Any]) -> None:
    group_id = make_group()

    reply = call("create_connection", body=create_body(group_id, **fields))

    assert reply.status == 400, reply.body
    assert reply.body["code"] == "InvalidInput"
    listed = call("list_connections", query={"group_id": group_id})
    assert listed.data["items"] == []
    # The same schema is still free: a sane retry creates the connection.
    assert call("create_connection", body=create_body(group_id)).status == 201


UPDATE_CASES = [
    {"data_delay_threshold": HUGE, "data_delay_sensitivity": "CUSTOM"},
    {"data_delay_threshold": 10**40},
    {"sync_frequency": HUGE},
    {"config": {"page_size": HUGE}},
    {"config": {"base_url": "https://api.example.com:99999"}},
]


@pytest.mark.parametrize("fields", UPDATE_CASES, ids=lambda f: ",".join(f"{k}" for k in f))
def test_a_huge_number_at_update_is_a_400_and_nothing_changes(aws, fields: dict[str, Any]) -> None:
    created = make_connection(make_group())
    before = call("get_connection", path=f"/v1/connections/{created['id']}").data

    reply = call(
        "update_connection",
        path=f"/v1/connections/{created['id']}",
        body={**fields, "run_setup_tests": False},
    )

    assert reply.status == 400, reply.body
    assert reply.body["code"] == "InvalidInput"
    assert call("get_connection", path=f"/v1/connections/{created['id']}").data == before


@pytest.mark.parametrize("op", ["list_connections", "list_groups", "get_metadata"])
@pytest.mark.parametrize("limit", ["1e39", str(10**40), "0", "-1"])
def test_a_huge_limit_is_a_400(aws, op: str, limit: str) -> None:
    path = {
        "list_connections": "/v1/connections",
        "list_groups": "/v1/groups",
        "get_metadata": "/v1/metadata/connector-types",
    }[op]
    reply = call(op, path=path, query={"limit": limit})
    assert reply.status == 400, reply.body
    assert reply.body["code"] == "InvalidInput"


def test_the_largest_custom_threshold_is_accepted_and_reads_back(aws) -> None:
    from sluice.api.request_models import MAX_DATA_DELAY_THRESHOLD

    group_id = make_group()
    reply = call(
        "create_connection",
        body=create_body(
            group_id, data_delay_sensitivity="CUSTOM", data_delay_threshold=MAX_DATA_DELAY_THRESHOLD
        ),
    )
    assert reply.status == 201, reply.body
    assert reply.data["data_delay_threshold"] == MAX_DATA_DELAY_THRESHOLD
    assert reply.data["status"]["update_state"] == "on_schedule"
    over = call(
        "create_connection",
        body=create_body(
            group_id,
            config=rest_api_config(schema="other"),
            data_delay_sensitivity="CUSTOM",
            data_delay_threshold=MAX_DATA_DELAY_THRESHOLD + 1,
        ),
    )
    assert over.status == 400
    assert over.body["message"] == (
        f"Invalid value for field 'data_delay_threshold': Input should be less than or equal to "
        f"{MAX_DATA_DELAY_THRESHOLD}"
    )


@pytest.mark.parametrize("offset", ["1e39", str(10**40), "+15", "-13", "5.5"])
def test_a_destination_time_zone_offset_is_whole_hours_from_minus_12_to_plus_14(aws, offset: str) -> None:
    group_id = make_group()
    body = {"group_id": group_id, "service": "s3", "config": {"bucket": "lake-bucket"}}

    reply = call("create_destination", body={**body, "time_zone_offset": offset})

    assert reply.status == 400, reply.body
    assert reply.body["message"].startswith("Invalid value for field 'time_zone_offset'")
    for fine in ["-12", "0", "+5", "14"]:
        assert (
            call(
                "create_destination", body={**body, "group_id": make_group(), "time_zone_offset": fine}
            ).status
            == 201
        )


def test_a_create_whose_setup_tests_run_is_saved_once_with_its_results(aws) -> None:
    """The setup tests run before the one write: the saved connection already holds their results."""
    group_id = make_group()
    with SampleApi(rows=3) as api:
        body = create_body(group_id, config=sample_api_config(api.url), run_setup_tests=True)
        reply = call("create_connection", body=body)

    assert reply.status == 201, reply.body
    assert reply.data["status"]["setup_state"] == "connected"
    stored = call("get_connection", path=f"/v1/connections/{reply.data['id']}").data
    assert stored["setup_tests"] == reply.data["setup_tests"] and stored["setup_tests"]
    assert stored["status"]["setup_state"] == reply.data["status"]["setup_state"]
    assert call("create_connection", body=body).status == 409  # the same schema is now taken
