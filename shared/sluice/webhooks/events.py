"""Which Fivetran webhook events a bus event is, and their payloads (Fivetran's shape).

Every payload is `{"event", "created", "connector_type", "connector_id", "connector_name",
"destination_group_id", "data"}`, with `sync_id` for the sync events: what Fivetran sends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# The connector events Fivetran names, all of which Sluice delivers.
EVENTS = (
    "sync_start",
    "sync_end",
    "connection_successful",
    "connection_failure",
    "create_connector",
    "pause_connector",
    "resume_connector",
    "edit_connector",
    "delete_connector",
    "force_update_connector",
    "resync_connector",
    "resync_table",
)
# Bus detail types that carry webhook events (the delivery rule's pattern, in template.yaml too).
BUS_EVENTS = (
    "Sync Started",
    "Sync Completed",
    "Sync Requested",
    "Connection Created",
    "Connection Updated",
    "Connection Deleted",
    "Setup Tests Completed",
)
_PAYLOAD_KEYS = ("event", "created", "connector_type", "connector_id", "connector_name", "sync_id")


@dataclass(frozen=True)
class WebhookEvent:
    """One event to deliver: its name, whose it is (account, group), and the payload."""

    name: str
    account_id: str
    group_id: str
    payload: dict[str, Any]


def webhook_events(
    bus_event: dict[str, Any], connection_of: Callable[[str], dict[str, Any] | None]
) -> list[WebhookEvent]:
    """The webhook events in one bus event (none for most). `connection_of(id)` gives a connection's
    response shape, for bus events that name the connection only (`Sync Requested`)."""
    kind = str(bus_event.get("detail-type") or "")
    detail = bus_event.get("detail") or {}
    account_id = str(detail.get("account_id") or "")
    if not account_id or kind not in BUS_EVENTS:
        return []
    created = str(bus_event.get("time") or "")
    if kind in ("Sync Started", "Sync Completed"):
        payload = {k: detail[k] for k in _PAYLOAD_KEYS if k in detail}
        payload["destination_group_id"] = detail.get("destination_group_id")
        payload["data"] = dict(detail.get("data") or {})
        return [
            WebhookEvent(
                str(detail.get("event")), account_id, str(detail.get("destination_group_id")), payload
            )
        ]
    if kind == "Sync Requested":
        if detail.get("reason") == "continuation":
            return []  # the same sync, going on
        if detail.get("historical"):
            name = "resync_table" if detail.get("scope") else "resync_connector"
        elif detail.get("force"):
            name = "force_update_connector"
        else:
            return []
        requested = connection_of(str(detail.get("connection_id")))
        if requested is None:
            return []  # deleted meanwhile
        detail = {**detail, "connection": requested}
    connection = detail.get("connection") or {}
    group_id = str(detail.get("group_id") or connection.get("group_id") or "")

    def event(name: str, data: dict[str, Any]) -> WebhookEvent:
        return WebhookEvent(
            name,
            account_id,
            group_id,
            {
                "event": name,
                "created": created,
                "connector_type": connection.get("service") or detail.get("service"),
                "connector_id": detail.get("connection_id"),
                "connector_name": connection.get("schema") or detail.get("schema"),
                "destination_group_id": group_id,
                "data": data,
            },
        )

    if kind == "Connection Created":
        return [event("create_connector", {"connection": connection})]
    if kind == "Connection Deleted":
        return [event("delete_connector", {})]
    if kind == "Connection Updated":
        edits = [event("edit_connector", {"connection": connection})]
        was_paused, paused = detail.get("was_paused"), connection.get("paused")
        if was_paused is not None and was_paused != paused:
            edits.append(event("pause_connector" if paused else "resume_connector", {}))
        return edits
    if kind == "Sync Requested":
        scope = detail.get("scope")
        return [event(name, {"scope": scope} if scope else {})]
    if kind == "Setup Tests Completed":
        passed = detail.get("setup_state") == "connected"
        data = {"setup_tests": detail.get("setup_tests") or []}
        return [event("connection_successful" if passed else "connection_failure", data)]
    return []


def sample_payload(name: str, group_id: str | None) -> dict[str, Any]:
    """What `POST /v1/webhooks/{id}/test` sends: an event of that name about no real connection."""
    from sluice.timestamps import format_timestamp, utc_now

    payload: dict[str, Any] = {
        "event": name,
        "created": format_timestamp(utc_now()),
        "connector_type": "rest_api",
        "connector_id": "webhook_test",
        "connector_name": "webhook_test",
        "destination_group_id": group_id or "webhook_test",
        "data": {"status": "SUCCESSFUL"} if name == "sync_end" else {},
    }
    if name in ("sync_start", "sync_end"):
        payload["sync_id"] = "webhook_test"
    return payload
