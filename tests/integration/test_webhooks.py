"""Fivetran's Webhooks API through its handlers on moto, delivering to a real receiver on 127.0.0.1:
the wire shapes, the first test POST, secrets, signatures, the events each bus event becomes, and
retries that reach only the webhooks that did not take an event."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from local.functions import load_module
from local.lambda_context import LocalContext
from sluice.webhooks.operations import WebhookDeliveryFailed
from tests.support.api_events import Account, call, connection_path, make_connection, make_group
from tests.support.webhook_receiver import WebhookReceiver

SECRET = "shh-webhook-secret"
OTHER = Account(account_id="acct_other", user_id="user_other")


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver()
    yield hook
    hook.stop()


def create(receiver: WebhookReceiver, events: list[str], **body: Any) -> Any:
    reply = call(
        "create_account_webhook",
        body={"url": receiver.url, "events": events, "secret": SECRET, **body},
    )
    assert reply.status == 200, reply.body
    return reply


def webhook_path(webhook_id: str) -> str:
    return f"/v1/webhooks/{webhook_id}"


def bus_event(detail_type: str, detail: dict[str, Any], event_id: str = "evt-1") -> dict[str, Any]:
    return {
        "version": "0",
        "id": event_id,
        "detail-type": detail_type,
        "source": "sluice",
        "time": "2026-12-02T10:00:00Z",
        "detail": detail,
    }


def deliver(event: dict[str, Any]) -> dict[str, Any]:
    handler = load_module("functions/webhook_delivery").lambda_handler
    return dict(handler(event, LocalContext(function_name="webhook_delivery")))


def sync_end(group_id: str, connection_id: str = "conn1", account_id: str = "acct_example") -> dict[str, Any]:
    return {
        "event": "sync_end",
        "created": "2026-12-02T10:00:00.000Z",
        "connector_type": "rest_api",
        "connector_id": connection_id,
        "connector_name": "shop",
        "sync_id": "sync-1",
        "destination_group_id": group_id,
        "account_id": account_id,
        "connection_id": connection_id,
        "data": {"status": "SUCCESSFUL", "rows_upserted": 3, "rows_deleted": 0},
    }


# ---- the API -----------------------------------------------------------------------------------------


def test_an_account_webhook_is_tested_first_and_answers_fivetrans_shape(aws, receiver) -> None:
    reply = create(receiver, ["sync_start", "sync_end"])
    data = reply.data
    assert reply.body["message"] == "Account webhook has been created"
    assert set(data) == {"id", "type", "url", "events", "active", "secret", "created_at", "created_by"}
    assert (data["type"], data["url"], data["events"], data["active"]) == (
        "account",
        receiver.url,
        ["sync_start", "sync_end"],
        True,
    )
    assert data["secret"] == "******" and data["created_by"] == "user_example"
    # Fivetran's rule: an active webhook gets one test payload before it is created, signed.
    (first,) = receiver.received
    assert first.payload["event"] == "sync_start" and first.signed_with(SECRET)
    assert first.headers["x-fivetran-signature-256"].isupper()


def test_a_url_that_fails_the_first_test_creates_nothing(aws, receiver) -> None:
    receiver.status = 500
    reply = call("create_account_webhook", body={"url": receiver.url, "events": ["sync_end"]})
    assert reply.status == 400
    assert "HTTP 500" in reply.body["message"] and "Nothing was saved" in reply.body["message"]
    assert call("list_webhooks").data["items"] == []
    # active: false skips the test, as in Fivetran.
    inactive = call(
        "create_account_webhook", body={"url": receiver.url, "events": ["sync_end"], "active": False}
    )
    assert inactive.status == 200 and inactive.data["active"] is False


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"url": "http://hooks.example.com/x", "events": ["sync_end"]}, "secure (https://) URL"),
        ({"url": "https://user:pw@hooks.example.com/x", "events": ["sync_end"]}, "no credentials"),
        ({"url": "https://hooks.example.com/x", "events": ["sync_middle"]}, "Unknown event 'sync_middle'"),
        ({"url": "https://hooks.example.com/x", "events": []}, "events"),
        ({"events": ["sync_end"]}, "url"),
        ({"url": "https://hooks.example.com/x", "events": ["sync_end"], "colour": "red"}, "colour"),
    ],
)
def test_bad_input_is_a_400_that_says_why(aws, body: dict[str, Any], message: str) -> None:
    reply = call("create_account_webhook", body=body)
    assert reply.status == 400, reply.body
    assert message in reply.body["message"]


def test_the_outbound_guard_refuses_the_metadata_address(aws) -> None:
    reply = call(
        "create_account_webhook",
        body={"url": "https://169.254.169.254/latest/meta-data", "events": ["sync_end"]},
    )
    assert reply.status == 400
    assert "link-local" in reply.body["message"] or "refused" in reply.body["message"].lower()


def test_group_webhooks_need_the_callers_group(aws, receiver) -> None:
    group_id = make_group()
    reply = call(
        "create_group_webhook",
        path=f"/v1/webhooks/group/{group_id}",
        body={"url": receiver.url, "events": ["sync_end"]},
    )
    assert reply.status == 200, reply.body
    assert (reply.data["type"], reply.data["group_id"]) == ("group", group_id)
    assert reply.body["message"] == "Group webhook has been created"
    elsewhere = call(
        "create_group_webhook",
        path=f"/v1/webhooks/group/{group_id}",
        body={"url": receiver.url, "events": ["sync_end"]},
        account=OTHER,
    )
    assert elsewhere.status == 404 and elsewhere.body["code"] == "NotFound_Group"


def test_list_pages_get_patch_and_delete(aws, receiver) -> None:
    ids = [create(receiver, ["sync_end"], active=False).data["id"] for _ in range(3)]
    first = call("list_webhooks", query={"limit": "2"})
    assert first.status == 200 and len(first.data["items"]) == 2
    rest = call("list_webhooks", query={"limit": "2", "cursor": first.data["next_cursor"]})
    assert {i["id"] for i in first.data["items"] + rest.data["items"]} == set(ids)
    assert rest.data["next_cursor"] is None
    assert call("list_webhooks", account=OTHER).data["items"] == []

    got = call("get_webhook", path=webhook_path(ids[0]))
    assert got.status == 200 and got.data["secret"] == "******"
    assert call("get_webhook", path=webhook_path(ids[0]), account=OTHER).status == 404

    patched = call("update_webhook", path=webhook_path(ids[0]), body={"events": ["sync_start", "sync_end"]})
    assert patched.status == 200 and patched.data["events"] == ["sync_start", "sync_end"]
    assert patched.data["active"] is False and receiver.received == []  # inactive: nothing sent
    activated = call("update_webhook", path=webhook_path(ids[0]), body={"active": True})
    assert activated.status == 200 and activated.data["active"] is True
    assert len(receiver.received) == 1 and receiver.received[0].signed_with(SECRET)  # tested on activation

    deleted = call("delete_webhook", path=webhook_path(ids[0]))
    assert deleted.status == 200 and deleted.body["message"] == "Webhook has been deleted"
    gone = call("get_webhook", path=webhook_path(ids[0]))
    assert gone.status == 404 and gone.body["code"] == "NotFound_Webhook"
    assert call("delete_webhook", path=webhook_path(ids[1]), account=OTHER).status == 404


def test_the_secret_is_encrypted_never_returned_and_rotates(aws, receiver) -> None:
    webhook_id = create(receiver, ["sync_end"]).data["id"]
    from sluice.storage.keys import webhook_key
    from sluice.storage.store import get_store

    item = get_store().get(webhook_key(webhook_id))
    assert item is not None and SECRET not in json.dumps(item, default=str)
    rotated = call(
        "update_webhook", path=webhook_path(webhook_id), body={"secret": "new-secret", "run_tests": True}
    )
    assert rotated.status == 200 and "new-secret" not in json.dumps(rotated.body)
    assert receiver.received[-1].signed_with("new-secret")
    # "******" sent back keeps the stored secret.
    kept = call("update_webhook", path=webhook_path(webhook_id), body={"secret": "******", "run_tests": True})
    assert kept.status == 200 and receiver.received[-1].signed_with("new-secret")


def test_the_test_route_reports_what_the_receiver_answered(aws, receiver) -> None:
    webhook_id = create(receiver, ["sync_end"]).data["id"]
    ok = call("test_webhook", path=f"{webhook_path(webhook_id)}/test", body={"event": "sync_end"})
    assert ok.status == 200 and ok.data == {"succeed": True, "status": 200, "message": "Webhook delivered"}
    assert receiver.received[-1].payload["event"] == "sync_end"
    receiver.status = 503
    failed = call("test_webhook", path=f"{webhook_path(webhook_id)}/test", body={"event": "sync_start"})
    assert failed.status == 200 and failed.data["succeed"] is False and failed.data["status"] == 503
    unknown = call("test_webhook", path=f"{webhook_path(webhook_id)}/test", body={"event": "nope"})
    assert unknown.status == 400


# ---- delivery of bus events ---------------------------------------------------------------------------


def test_a_sync_end_reaches_account_webhooks_and_its_groups_only(aws) -> None:
    group_id, other_group = make_group("one"), make_group("two")
    hooks = {
        name: WebhookReceiver() for name in ("account", "group", "other_group", "inactive", "start_only")
    }
    try:
        create(hooks["account"], ["sync_end"])
        for name, group in (("group", group_id), ("other_group", other_group)):
            reply = call(
                "create_group_webhook",
                path=f"/v1/webhooks/group/{group}",
                body={"url": hooks[name].url, "events": ["sync_end"], "secret": SECRET},
            )
            assert reply.status == 200, reply.body
        create(hooks["inactive"], ["sync_end"], active=False)
        create(hooks["start_only"], ["sync_start"])
        call(
            "create_account_webhook",
            body={"url": hooks["account"].url, "events": ["sync_end"]},
            account=OTHER,
        )
        before = {name: len(hook.received) for name, hook in hooks.items()}

        result = deliver(bus_event("Sync Completed", sync_end(group_id)))

        assert result["delivered"] == 2
        got = {name: hook.received[before[name] :] for name, hook in hooks.items()}
        assert [len(got[n]) for n in ("account", "group", "other_group", "inactive", "start_only")] == [
            1,
            1,
            0,
            0,
            0,
        ]
        payload = got["group"][0].payload
        assert payload == {
            "event": "sync_end",
            "created": "2026-12-02T10:00:00.000Z",
            "connector_type": "rest_api",
            "connector_id": "conn1",
            "connector_name": "shop",
            "sync_id": "sync-1",
            "destination_group_id": group_id,
            "data": {"status": "SUCCESSFUL", "rows_upserted": 3, "rows_deleted": 0},
        }
        assert got["group"][0].signed_with(SECRET) and got["account"][0].signed_with(SECRET)
    finally:
        for hook in hooks.values():
            hook.stop()


def test_a_retry_reaches_only_the_webhooks_that_did_not_take_the_event(aws) -> None:
    group_id = make_group()
    good, flaky = WebhookReceiver(), WebhookReceiver()
    try:
        create(good, ["sync_end"])
        create(flaky, ["sync_end"])
        flaky.status = 500
        event = bus_event("Sync Completed", sync_end(group_id), event_id="evt-retry")
        with pytest.raises(WebhookDeliveryFailed):
            deliver(event)  # the invocation fails: Lambda (or the local stack) retries the event
        flaky.status = 200
        assert deliver(event)["delivered"] == 1
        assert deliver(event)["delivered"] == 0  # delivered to each once; a late duplicate sends nothing
        real = [
            [r for r in hook.events("sync_end") if r.payload["sync_id"] == "sync-1"] for hook in (good, flaky)
        ]
        assert [len(deliveries) for deliveries in real] == [1, 2]  # flaky: the failed attempt and the retry
    finally:
        good.stop()
        flaky.stop()


def test_connection_changes_become_fivetrans_connector_events(aws, receiver) -> None:
    events = ["create_connector", "edit_connector", "pause_connector", "resume_connector", "delete_connector"]
    create(receiver, [*events, "force_update_connector", "resync_connector", "resync_table"])
    receiver.received.clear()  # the first test payload

    from sluice.aws import client

    sqs = client("sqs")
    queue = next(url for url, function in aws.rule_queues.values() if function == "WebhookDeliveryFunction")

    def deliver_what_was_published() -> None:
        """What the bus handed the delivery rule since the last call, delivered as the function would."""
        while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                deliver(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])

    group_id = make_group()
    connection = make_connection(group_id)
    path = connection_path(connection["id"])
    deliver_what_was_published()
    for op, suffix, body in (
        ("update_connection", "", {"paused": True}),
        ("update_connection", "", {"paused": False}),
        ("sync_connection", "/sync", {"force": True}),
        ("resync_connection", "/resync", {}),
        ("resync_connection", "/schemas/tables/resync", {"shop": ["orders"]}),
    ):
        assert call(op, path=path + suffix, body=body).status == 200
        deliver_what_was_published()
    assert call("delete_connection", path=path).status == 200
    deliver_what_was_published()

    names = [r.payload["event"] for r in receiver.received]
    for expected in (*events, "force_update_connector", "resync_connector", "resync_table"):
        assert expected in names, names
    assert names.index("pause_connector") < names.index("resume_connector") < names.index("delete_connector")
    created = receiver.events("create_connector")[0].payload
    assert created["connector_id"] == connection["id"] and created["destination_group_id"] == group_id
    assert "tok-secret-1" not in json.dumps([r.payload for r in receiver.received])  # secrets stay masked
