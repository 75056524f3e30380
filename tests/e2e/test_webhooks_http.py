"""Webhooks over the local stack's HTTP API, delivered for real: a sync's sync_start and sync_end reach
a receiver on 127.0.0.1, signed; a webhook that keeps failing is retried, then dead-lettered."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.sample_api import SampleApi, config_for
from tests.support.local_stack import LocalStackProcess, start_local_stack, wait_for_sync
from tests.support.webhook_receiver import WebhookReceiver, webhook_receiver

SECRET = "e2e-webhook-secret"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as hook:
        yield hook


def test_a_sync_is_delivered_to_an_account_webhook_signed(stack: LocalStackProcess, receiver) -> None:
    http = stack.session()
    created = http.post(
        f"{stack.url}/v1/webhooks/account",
        json={"url": receiver.url, "events": ["sync_start", "sync_end"], "secret": SECRET},
    )
    assert created.status_code == 200, created.text
    assert created.json()["data"]["secret"] == "******"
    with SampleApi(rows=20) as api:
        config = config_for(api.url, "next_link", None, "hooked_" + uuid.uuid4().hex[:6], 10)
        made = http.post(
            f"{stack.url}/v1/connections",
            json={
                "group_id": stack.group_id,
                "service": "rest_api",
                "config": config,
                "run_setup_tests": False,
            },
        )
        assert made.status_code == 201, made.text
        connection_id = made.json()["data"]["id"]
        url = f"{stack.url}/v1/connections/{connection_id}"
        assert http.post(f"{url}/sync", json={}).status_code == 200
        wait_for_sync(http, url)

    def ours(name: str) -> list:
        return receiver.wait_until(
            lambda r: r.payload["event"] == name and r.payload["connector_id"] == connection_id
        )

    (start,), (end,) = ours("sync_start"), ours("sync_end")
    assert start.signed_with(SECRET) and end.signed_with(SECRET)
    assert (
        end.payload["data"]["status"] == "SUCCESSFUL" and end.payload["sync_id"] == start.payload["sync_id"]
    )
    assert end.payload["destination_group_id"] == stack.group_id
    http.delete(f"{stack.url}/v1/webhooks/{created.json()['data']['id']}")


def test_a_webhook_that_keeps_failing_is_retried_then_dead_lettered(tmp_path: Path, receiver) -> None:
    running = start_local_stack(tmp_path / "data", env_extra={"SLUICE_LOCAL_RETRY_AFTER_SECONDS": "1"})
    try:
        http = running.session()
        receiver.status = 500
        created = http.post(
            f"{running.url}/v1/webhooks/account",
            json={"url": receiver.url, "events": ["create_connector"], "active": False},
        )
        webhook_id = created.json()["data"]["id"]
        # Activated without a test: PATCH with active only tests it, so make the receiver pass once.
        receiver.status = 200
        assert http.patch(f"{running.url}/v1/webhooks/{webhook_id}", json={"active": True}).status_code == 200
        receiver.status = 500
        made = http.post(
            f"{running.url}/v1/connections",
            json={
                "group_id": running.group_id,
                "service": "rest_api",
                "config": config_for("https://api.example.com", "next_link", None, "dead_letters", 10),
                "run_setup_tests": False,
            },
        )
        assert made.status_code == 201, made.text
        attempts = receiver.wait_for("create_connector", 3, timeout=60)
        assert len(attempts) == 3  # the first try and Lambda's two retries
        dead = running.data_dir / "dead-letters.jsonl"
        deadline = time.monotonic() + 30
        while not dead.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        (line,) = dead.read_text().splitlines()
        kept = json.loads(line)
        assert kept["function"] == "WebhookDeliveryFunction"
        assert kept["event"]["detail-type"] == "Connection Created"
        assert kept["event"]["detail"]["connection_id"] == made.json()["data"]["id"]
    finally:
        running.stop()
