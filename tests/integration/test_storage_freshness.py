"""Reads that could depend on an index's or a replica's freshness (issue 16, finding 7): API keys
are read strongly consistently; the trial's end is correct under index lag (the index only says
which connections exist; the decision is made on a consistent read of each)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sluice.accounts.api_keys import authenticate, create_api_key
from sluice.accounts.trials import set_trial_end
from sluice.scheduler.tick import Scheduler
from sluice.timestamps import utc_now
from tests.support.api_events import DEFAULT, call, make_connection, make_group

pytestmark = pytest.mark.backends("moto", "dynamodb_local")


def test_api_keys_are_read_strongly_consistently(aws, store) -> None:
    key = create_api_key(store)
    reads: list[bool] = []

    def record(params, **_) -> None:
        reads.append(bool(params.get("ConsistentRead")))

    store.client.meta.events.register("provide-client-params.dynamodb.GetItem", record)
    try:
        import base64

        header = "Basic " + base64.b64encode(f"{key.api_key}:{key.api_secret}".encode()).decode()
        assert authenticate(store, header) is not None
    finally:
        store.client.meta.events.unregister("provide-client-params.dynamodb.GetItem", record)
    assert reads == [True]


def test_the_trial_end_pauses_a_connection_flagged_a_moment_ago_even_if_the_index_lags(aws, store) -> None:
    created = make_connection(make_group())
    partition = f"ACCT#{DEFAULT.account_id}#CONN"
    stale = store.client.query(
        TableName=store.name,
        IndexName="gsi1",
        KeyConditionExpression="gsi1pk = :p",
        ExpressionAttributeValues={":p": {"S": partition}},
    )["Items"]
    assert stale and stale[0]["pause_after_trial"] == {"BOOL": False}
    reply = call(
        "update_connection", path=f"/v1/connections/{created['id']}", body={"pause_after_trial": True}
    )
    assert reply.status == 200, reply.body
    now = utc_now()
    set_trial_end(store, DEFAULT.account_id, now - timedelta(minutes=1))

    def lagging_index(parsed, model, **_) -> None:
        """The index has not caught up with the PATCH yet: it still shows the copy from before."""
        items = parsed.get("Items") or []
        if model.name == "Query" and items and items[0].get("gsi1pk") == {"S": partition}:
            parsed["Items"] = stale

    store.client.meta.events.register("after-call.dynamodb.Query", lagging_index)
    try:
        report = Scheduler(store, 4).tick(now)
    finally:
        store.client.meta.events.unregister("after-call.dynamodb.Query", lagging_index)
    assert report.paused_after_trial == [created["id"]]
    assert store.get_connection(None, created["id"]).paused is True


def test_the_local_tables_apply_the_templates_ttl(aws, store) -> None:
    """Finding 8: the local stack and the tests create the tables from template.yaml, TTL included."""
    ttl = store.client.describe_time_to_live(TableName=store.name)["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] in ("ENABLED", "ENABLING")
    assert ttl["AttributeName"] == "expires_at"
