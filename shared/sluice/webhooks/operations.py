"""The Webhooks API (Fivetran's wire): account and group webhooks, listed, read, changed, deleted and
tested. The secret is encrypted like every other (KMS, bound to the webhook's id) and reads `******`.

As Fivetran does, creating an active webhook (or activating one) first sends it a test payload: a URL
that does not answer with a 2xx is a 400 and nothing is saved. `active: false` skips that test.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sluice.api.caller import Caller
from sluice.api.request_models import CreateWebhookRequest, TestWebhookRequest, UpdateWebhookRequest
from sluice.errors import GroupNotFound, InvalidInput, WebhookNotFound
from sluice.ids import new_id
from sluice.settings import get_settings
from sluice.storage.store import Store
from sluice.timestamps import format_timestamp, utc_now
from sluice.webhooks.delivery import Delivery, deliver
from sluice.webhooks.events import EVENTS, sample_payload

MASK = "******"
SECRET_SCOPE = "webhook_id"
MAX_WEBHOOKS_PER_ACCOUNT = 100
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def webhook_out(item: dict[str, Any]) -> dict[str, Any]:
    out = {
        "id": item["id"],
        "type": item["type"],
        "url": item["url"],
        "events": list(item["events"]),
        "active": bool(item["active"]),
        "secret": MASK if item.get("secret") else None,
        "created_at": item["created_at"],
        "created_by": item["created_by"],
    }
    if item.get("group_id"):
        out["group_id"] = item["group_id"]
    return out


def check_url(url: str) -> str:
    """Fivetran's rule: an HTTPS URL. Plain HTTP only to loopback where the deployment allows it (the
    local stack); which addresses may be reached at all is the outbound guard's, at delivery."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host or parts.username or parts.password:
        raise InvalidInput("Field 'url' must be an https:// URL with a host (and no credentials)")
    if parts.scheme == "https":
        return url
    if parts.scheme == "http" and host in _LOOPBACK_HOSTS and get_settings().allow_loopback:
        return url
    raise InvalidInput("Field 'url' must be a secure (https://) URL")


def check_events(events: list[str]) -> list[str]:
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        raise InvalidInput(f"Unknown event '{unknown[0]}'; the events are: {', '.join(EVENTS)}")
    return list(dict.fromkeys(events))


def _secret_of(item: dict[str, Any]) -> str | None:
    blob = item.get("secret")
    if not blob:
        return None
    from sluice.config_secrets import secret_box

    return secret_box().decrypt(str(item["id"]), {"secret": str(blob)}, SECRET_SCOPE)["secret"]


def _sealed(webhook_id: str, secret: str) -> str:
    from sluice.config_secrets import secret_box

    return secret_box().encrypt(webhook_id, {"secret": secret}, SECRET_SCOPE)["secret"]


def _first_test(url: str, events: list[str], secret: str | None, group_id: str | None) -> None:
    tested = deliver(url, sample_payload(events[0], group_id), secret)
    if not tested.succeed:
        raise InvalidInput(f"The webhook test failed: {tested.message}. Nothing was saved")


def create(
    caller: Caller, request: CreateWebhookRequest, group_id: str | None, store: Store
) -> dict[str, Any]:
    if group_id is not None and store.get_group(caller.account_id, group_id) is None:
        raise GroupNotFound(group_id)
    url, events = check_url(request.url), check_events(request.events)
    if len(store.account_webhooks(caller.account_id)) >= MAX_WEBHOOKS_PER_ACCOUNT:
        raise InvalidInput(f"An account has at most {MAX_WEBHOOKS_PER_ACCOUNT} webhooks")
    if request.active:
        _first_test(url, events, request.secret, group_id)
    webhook_id = new_id()
    item: dict[str, Any] = {
        "id": webhook_id,
        "account_id": caller.account_id,
        "type": "group" if group_id else "account",
        "url": url,
        "events": events,
        "active": request.active,
        "created_at": format_timestamp(utc_now()),
        "created_by": caller.user_id,
        "version": 1,
    }
    if group_id:
        item["group_id"] = group_id
    if request.secret:
        item["secret"] = _sealed(webhook_id, request.secret)
    store.put_webhook(item, None)
    return webhook_out(item)


def get(caller: Caller, webhook_id: str, store: Store) -> dict[str, Any]:
    return webhook_out(_item(caller, webhook_id, store))


def _item(caller: Caller, webhook_id: str, store: Store) -> dict[str, Any]:
    item = store.get_webhook(caller.account_id, webhook_id)
    if item is None:
        raise WebhookNotFound(webhook_id)
    return item


def list_webhooks(caller: Caller, cursor: str | None, limit: int, store: Store) -> dict[str, Any]:
    page = store.list_webhooks(caller.account_id, cursor, limit)
    return {"items": [webhook_out(i) for i in page.items], "next_cursor": page.next_cursor}


def update(caller: Caller, webhook_id: str, request: UpdateWebhookRequest, store: Store) -> dict[str, Any]:
    item = _item(caller, webhook_id, store)
    changed = dict(item)
    if request.url is not None:
        changed["url"] = check_url(request.url)
    if request.events is not None:
        changed["events"] = check_events(request.events)
    if request.active is not None:
        changed["active"] = request.active
    secret = request.secret if request.secret not in (None, MASK) else _secret_of(item)
    if request.secret not in (None, MASK):
        changed["secret"] = _sealed(webhook_id, str(request.secret))
    activated = changed["active"] and not item["active"]
    if changed["active"] and (activated or request.run_tests or changed["url"] != item["url"]):
        _first_test(changed["url"], list(changed["events"]), secret, item.get("group_id"))
    changed["version"] = int(item.get("version", 1)) + 1
    store.put_webhook(changed, int(item.get("version", 1)))  # a concurrent change: 409, nothing lost
    return webhook_out(changed)


def delete(caller: Caller, webhook_id: str, store: Store) -> None:
    if not store.delete_webhook(caller.account_id, webhook_id):
        raise WebhookNotFound(webhook_id)


def test(caller: Caller, webhook_id: str, request: TestWebhookRequest, store: Store) -> dict[str, Any]:
    item = _item(caller, webhook_id, store)
    event = check_events([request.event])[0]
    tested: Delivery = deliver(
        str(item["url"]), sample_payload(event, item.get("group_id")), _secret_of(item)
    )
    return {"succeed": tested.succeed, "status": tested.status, "message": tested.message}


DELIVERED_KEPT_SECONDS = 2 * 24 * 3600  # past the bus's retries of one event


class WebhookDeliveryFailed(Exception):
    """Some webhooks did not take an event: the invocation fails, so the event is retried (only to
    those), and after the last retry it goes to the dead-letter queue."""


def deliver_bus_event(bus_event: dict[str, Any], store: Store) -> int:
    """Deliver one bus event to every active webhook that asked for it (the account's, and its group's).
    Each (event, webhook) is delivered once: a retry skips the webhooks that took it. Returns how many
    deliveries were made."""
    import time

    from sluice.connections.operations import as_response
    from sluice.errors import ConnectionNotFound
    from sluice.observability import logger
    from sluice.webhooks.events import webhook_events

    def connection_of(connection_id: str) -> dict[str, Any] | None:
        try:
            return as_response(store.get_connection(None, connection_id))
        except ConnectionNotFound:
            return None

    event_id = str(bus_event.get("id") or "")
    hooks_of: dict[str, list[dict[str, Any]]] = {}
    delivered, failed = 0, []
    for event in webhook_events(bus_event, connection_of):
        if event.account_id not in hooks_of:
            hooks_of[event.account_id] = store.account_webhooks(event.account_id)
        for hook in hooks_of[event.account_id]:
            wanted = hook.get("active") and event.name in hook.get("events", ())
            if not wanted or (hook.get("type") == "group" and hook.get("group_id") != event.group_id):
                continue
            key = f"{event_id}#{event.name}"
            if store.webhook_delivered(str(hook["id"]), key):
                continue
            result = deliver(str(hook["url"]), event.payload, _secret_of(hook))
            if result.succeed:
                store.mark_webhook_delivered(str(hook["id"]), key, int(time.time()) + DELIVERED_KEPT_SECONDS)
                delivered += 1
                continue
            failed.append(str(hook["id"]))
            logger.warning(
                "webhook delivery failed",
                extra={
                    "webhook_id": hook["id"],
                    "event": event.name,
                    "status": result.status,
                    "reason": result.message,
                },
            )
    if failed:
        raise WebhookDeliveryFailed(f"{len(failed)} webhook(s) did not take the event: {', '.join(failed)}")
    return delivered
