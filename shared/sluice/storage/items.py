"""Item mapping: domain values to DynamoDB items and back, and list cursors."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sluice.connections.model import Connection
from sluice.errors import InvalidInput
from sluice.storage.keys import (
    TRIAL_PARTITION,
    account_connections_partition,
    account_groups_partition,
    account_key,
    api_key_key,
    connection_key,
    delay_partition,
    destination_key,
    group_key,
    retest_partition,
    schedule_partition,
)
from sluice.timestamps import format_timestamp, parse_timestamp

# Item attributes that hold JSON documents as strings (free-form maps with floats and empty values).
_JSON_ATTRIBUTES = (
    "config",
    "secrets",
    "setup_tests",
    "tasks",
    "warnings",
    "table_columns",
    "destination_configuration",
    "external_secrets_keys_config",
    "schedule",
    "resync_schedule",
)
_CONNECTION_DATETIMES = (
    "created_at",
    "succeeded_at",
    "failed_at",
    "rescheduled_for",
    "lease_expires_at",
    "heartbeat_at",
    "next_sync_at",
    "connected_since",
    "retest_at",
    "last_sync_started_at",
    "next_resync_at",
)


# ---- serialization -------------------------------------------------------------------------------------


def _serializer() -> Any:
    from boto3.dynamodb.types import TypeSerializer

    return TypeSerializer()


def _deserializer() -> Any:
    from boto3.dynamodb.types import TypeDeserializer

    return TypeDeserializer()


def to_dynamo(item: dict[str, Any]) -> dict[str, Any]:
    ser = _serializer()
    return {k: ser.serialize(v) for k, v in item.items() if v is not None}


def from_dynamo(item: dict[str, Any]) -> dict[str, Any]:
    des = _deserializer()
    return {k: _plain(des.deserialize(v)) for k, v in item.items()}


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; the domain wants ints."""
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def connection_to_item(connection: Connection) -> dict[str, Any]:
    item: dict[str, Any] = connection.model_dump(mode="python", by_alias=True)
    for name in _CONNECTION_DATETIMES:
        item[name] = format_timestamp(item[name])
    for name in _JSON_ATTRIBUTES:
        value = item[name]
        item[name] = None if value is None else json.dumps(value, separators=(",", ":"))
    keys = {
        **connection_key(connection.id),
        "gsi1pk": account_connections_partition(connection.account_id),
        "gsi1sk": f"{connection.group_id}#{connection.schema_name}",
        "type": "connection",
    }
    return {**keys, **_timer_keys(connection), **item}


def _timer_keys(connection: Connection) -> dict[str, str]:
    """Keys of the two sparse, sharded indexes the scheduler tick reads, so that a tick costs what is
    due and never what exists:
    - `schedule`: the next sync of a schedulable connection, or the next re-test of a broken one;
    - `timers`: when a connection's data becomes late (until that episode is announced).
    """
    from sluice.scheduler.data_delay import connection_delayed_after
    from sluice.scheduler.grid import shard_for
    from sluice.settings import get_settings

    shard = shard_for(connection.id, get_settings().scheduler_shards)
    keys: dict[str, str] = {}
    if connection.next_sync_at is not None:
        keys["sched_pk"] = schedule_partition(shard)
        keys["sched_sk"] = schedule_marker(connection.id, connection.next_sync_at, connection.next_resync_at)
    elif connection.retest_at is not None and connection.setup_state == "broken":
        keys["sched_pk"] = retest_partition(shard)
        keys["sched_sk"] = f"{format_timestamp(connection.retest_at)}#{connection.id}"
    delayed_after = None if connection.delay_announced else connection_delayed_after(connection)
    if delayed_after is not None:
        keys["timer_pk"] = delay_partition(shard)
        keys["timer_sk"] = f"{format_timestamp(delayed_after)}#{connection.id}"
    return keys


def schedule_marker(connection_id: str, next_sync: datetime, next_resync: datetime | None) -> str:
    """The `schedule` index sort key of a schedulable connection: the earlier of its next sync and its
    next scheduled re-sync (ours), so a re-sync due first brings the connection up first."""
    due = next_sync if next_resync is None else min(next_sync, next_resync)
    return f"{format_timestamp(due)}#{connection_id}"


def connection_from_item(item: dict[str, Any]) -> Connection:
    data = dict(item)
    for name in _JSON_ATTRIBUTES:
        if isinstance(data.get(name), str):
            data[name] = json.loads(data[name])
    for name in _CONNECTION_DATETIMES:
        data[name] = parse_timestamp(data.get(name))
    fields = Connection.model_fields
    return Connection.model_validate({k: v for k, v in data.items() if k in fields or k == "schema"})


# ---- cursors -------------------------------------------------------------------------------------------


_CURSOR_KEY = ("pk", "sk", "gsi1pk", "gsi1sk")


def encode_cursor(last_key: dict[str, Any] | None, scope: str = "") -> str | None:
    """A list cursor: the index key to continue after, and the filter (`scope`) it was made for."""
    if not last_key:
        return None
    plain = {k: v for k, v in from_dynamo(last_key).items() if k in _CURSOR_KEY}
    document = {**plain, "f": scope} if scope else plain
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")


def decode_cursor(
    cursor: str | None, partition: str, scope: str = "", sk_prefix: str = ""
) -> dict[str, Any] | None:
    """The start key a cursor stands for. A cursor is valid only for the list (account partition and
    filter) that made it: reused with another filter it is a clear 400, never DynamoDB's error."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidInput("Invalid cursor") from None
    if not isinstance(key, dict):
        raise InvalidInput("Invalid cursor")
    made_for = key.pop("f", "")
    if (
        set(key) != set(_CURSOR_KEY)
        or not all(isinstance(v, str) for v in key.values())
        or key["gsi1pk"] != partition
        or not str(key["gsi1sk"]).startswith(sk_prefix)
    ):
        raise InvalidInput("Invalid cursor")
    if made_for != scope:
        raise InvalidInput(
            "Invalid cursor: it was returned for a list with other filters; pass the same filters"
        )
    return to_dynamo(key)


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


# ---- groups, destinations, API keys, accounts ---------------------------------------------------------


def group_item(group_id: str, account_id: str, name: str, created_at: str) -> dict[str, Any]:
    return {
        **group_key(group_id),
        "gsi1pk": account_groups_partition(account_id),
        "gsi1sk": f"{created_at}#{group_id}",
        "type": "group",
        "id": group_id,
        "name": name,
        "account_id": account_id,
        "created_at": created_at,
    }


def destination_item(group_id: str, account_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {
        **destination_key(group_id),
        "type": "destination",
        "account_id": account_id,
        "group_id": group_id,
        **fields,
    }


def api_key_item(api_key: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {**api_key_key(api_key), "type": "api_key", **fields}


def trial_item(account_id: str, trial_ends_at: str) -> dict[str, Any]:
    return {
        **account_key(account_id),
        "type": "account",
        "id": account_id,
        "trial_ends_at": trial_ends_at,
        "timer_pk": TRIAL_PARTITION,
        "timer_sk": f"{trial_ends_at}#{account_id}",
    }
