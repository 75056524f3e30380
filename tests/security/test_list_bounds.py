"""Issue 9 item 11: a filtered list bounds its work per page, whatever the filter matches."""

from __future__ import annotations

from datetime import timedelta

import boto3

from sluice.connections.model import Connection
from sluice.storage.store import PAGE_READ_BUDGET, connection_to_item, to_dynamo
from sluice.timestamps import utc_now
from tests.support.api_events import DEFAULT, call, rest_api_config

CONNECTIONS = 300


def seed(aws, total: int) -> None:
    """`total` connections of the default account straight into the table (the API would take minutes)."""
    now = utc_now() - timedelta(days=1)
    requests = []
    for i in range(total):
        connection = Connection(
            id=f"seed{i:06d}",
            account_id=DEFAULT.account_id,
            group_id="seedgroup",
            service="rest_api",
            schema=f"s{i}",
            connected_by="u",
            created_at=now,
            config=rest_api_config(f"s{i}"),
        )
        requests.append({"PutRequest": {"Item": to_dynamo(connection_to_item(connection))}})
    client = boto3.client("dynamodb", region_name="us-east-1")
    for offset in range(0, len(requests), 25):
        client.batch_write_item(RequestItems={aws.env["TABLE_NAME"]: requests[offset : offset + 25]})


def counting_queries(store):
    calls: list[str] = []

    def record(**kwargs) -> None:
        if kwargs["model"].name == "Query":
            calls.append(kwargs["params"].get("IndexName", ""))

    store.client.meta.events.register("before-call.dynamodb.Query", record)
    return calls


def test_a_filter_that_matches_nothing_costs_a_bounded_page_not_a_read_of_everything(aws, store) -> None:
    seed(aws, CONNECTIONS)
    queries = counting_queries(store)
    pages = 0
    cursor = None
    found = []
    while True:
        query = {"schema": "nomatch", "limit": "1", **({"cursor": cursor} if cursor else {})}
        before = len(queries)
        reply = call("list_connections", query=query)
        assert reply.status == 200, reply.body
        # One page: at most PAGE_READ_BUDGET index items, in a couple of Query calls (1 MB pages).
        assert len(queries) - before <= 2
        found += reply.data["items"]
        pages += 1
        cursor = reply.data["next_cursor"]
        if not cursor:
            break
    assert found == []
    assert pages == -(-CONNECTIONS // PAGE_READ_BUDGET)  # the whole list, budget by budget


def test_a_bounded_filtered_page_still_finds_every_match_across_pages(aws, store) -> None:
    seed(aws, CONNECTIONS)
    wanted = {"s5", "s250", "s299"}
    found = []
    for schema in sorted(wanted):
        cursor = None
        while True:
            query = {"schema": schema, "limit": "1", **({"cursor": cursor} if cursor else {})}
            reply = call("list_connections", query=query)
            assert reply.status == 200, reply.body
            found += [c["schema"] for c in reply.data["items"]]
            cursor = reply.data["next_cursor"]
            if not cursor:
                break
    assert sorted(found) == sorted(wanted)
