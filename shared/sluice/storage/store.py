"""DynamoDB access: item shapes, keys, conditional writes and cursors. The only module that touches boto3's
DynamoDB API; ClientErrors become domain errors here."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sluice.connections.model import Connection
from sluice.errors import (
    ConcurrentUpdate,
    Conflict,
    ConnectionNotFound,
    GroupNotFound,
    InvalidInput,
    SchemaTaken,
    SluiceError,
)
from sluice.timestamps import format_timestamp, parse_timestamp

# Item attributes that hold JSON documents as strings (free-form maps with floats and empty values).
_JSON_ATTRIBUTES = (
    "config",
    "secrets",
    "setup_tests",
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
    "next_sync_at",
    "connected_since",
    "retest_at",
    "last_sync_started_at",
    "next_resync_at",
)


# ---- keys: the one place that knows them ---------------------------------------------------------------


def connection_key(connection_id: str) -> dict[str, str]:
    return {"pk": f"CONN#{connection_id}", "sk": "CONN"}


def group_key(group_id: str) -> dict[str, str]:
    return {"pk": f"GROUP#{group_id}", "sk": "GROUP"}


def destination_key(group_id: str) -> dict[str, str]:
    return {"pk": f"GROUP#{group_id}", "sk": "DEST"}


def schema_guard_key(group_id: str, schema: str) -> dict[str, str]:
    return {"pk": f"GROUP#{group_id}", "sk": f"SCHEMA#{schema}"}


def duckdb_file_key(account_id: str, file_id: str) -> dict[str, str]:
    """Claims one duckdb file of an account for one group (two groups never share a file)."""
    return {"pk": f"DUCKDB#{account_id}#{file_id}", "sk": "DUCKDB"}


def api_key_key(api_key: str) -> dict[str, str]:
    return {"pk": f"APIKEY#{api_key}", "sk": "APIKEY"}


def state_key(connection_id: str, seq: int) -> dict[str, str]:
    return {"pk": f"CONN#{connection_id}", "sk": f"STATE#{seq:012d}"}


def run_key(connection_id: str, sync_id: str) -> dict[str, str]:
    return {"pk": f"CONN#{connection_id}", "sk": f"RUN#{sync_id}"}


def schedule_partition(shard: int) -> str:
    return f"SCHED#{shard}"


def retest_partition(shard: int) -> str:
    return f"RETEST#{shard}"


def delay_partition(shard: int) -> str:
    return f"DELAY#{shard}"


TRIAL_PARTITION = "TRIAL"


def account_key(account_id: str) -> dict[str, str]:
    return {"pk": f"ACCOUNT#{account_id}", "sk": "ACCOUNT"}


def account_connections_partition(account_id: str) -> str:
    return f"ACCT#{account_id}#CONN"


def account_groups_partition(account_id: str) -> str:
    return f"ACCT#{account_id}#GROUP"


def package_key(package_id: str) -> dict[str, str]:
    return {"pk": f"PACKAGE#{package_id}", "sk": "PACKAGE"}


def account_packages_partition(account_id: str) -> str:
    return f"ACCT#{account_id}#PACKAGE"


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
        # A scheduled re-sync due before the next sync brings the connection up first.
        due = min(connection.next_sync_at, connection.next_resync_at or connection.next_sync_at)
        keys["sched_pk"] = schedule_partition(shard)
        keys["sched_sk"] = f"{format_timestamp(due)}#{connection.id}"
    elif connection.retest_at is not None and connection.setup_state == "broken":
        keys["sched_pk"] = retest_partition(shard)
        keys["sched_sk"] = f"{format_timestamp(connection.retest_at)}#{connection.id}"
    delayed_after = None if connection.delay_announced else connection_delayed_after(connection)
    if delayed_after is not None:
        keys["timer_pk"] = delay_partition(shard)
        keys["timer_sk"] = f"{format_timestamp(delayed_after)}#{connection.id}"
    return keys


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


def encode_cursor(last_key: dict[str, Any] | None) -> str | None:
    if not last_key:
        return None
    return base64.urlsafe_b64encode(json.dumps(from_dynamo(last_key)).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, partition: str) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidInput("Invalid cursor") from None
    expected = {"pk", "sk", "gsi1pk", "gsi1sk"}
    if (
        not isinstance(key, dict)
        or set(key) != expected
        or not all(isinstance(v, str) for v in key.values())
        or key["gsi1pk"] != partition
    ):
        raise InvalidInput("Invalid cursor")
    return to_dynamo(key)


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


# ---- the table -----------------------------------------------------------------------------------------


def error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _cancellation_codes(exc: Exception) -> list[str]:
    response = getattr(exc, "response", None) or {}
    return [str(r.get("Code", "None")) for r in response.get("CancellationReasons", [])]


class Store:
    """The domain table. Every read is a GetItem or a Query on a key."""

    def __init__(self, client: Any, name: str) -> None:
        self._client = client
        self.name = name

    # -- generic ------------------------------------------------------------------------------------

    def get(self, key: dict[str, str], consistent: bool = True) -> dict[str, Any] | None:
        response = self._client.get_item(TableName=self.name, Key=to_dynamo(key), ConsistentRead=consistent)
        item = response.get("Item")
        return from_dynamo(item) if item else None

    def put_new(self, item: dict[str, Any], conflict: Callable[[], SluiceError]) -> None:
        from botocore.exceptions import ClientError

        try:
            self._client.put_item(
                TableName=self.name,
                Item=to_dynamo(item),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise conflict() from None
            raise

    def put_all_new(self, items: list[dict[str, Any]], conflict: Callable[[int], SluiceError]) -> None:
        """Write items that must not exist yet, all or none; `conflict(i)` is the error when item i exists."""

        def cancelled(codes: list[str]) -> SluiceError:
            taken = [i for i, code in enumerate(codes) if code == "ConditionalCheckFailed"]
            return conflict(taken[0]) if taken else Conflict("The write could not be made; retry")

        self.transact(
            [
                {
                    "Put": {
                        "TableName": self.name,
                        "Item": to_dynamo(item),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
                for item in items
            ],
            cancelled,
        )

    def query_page(
        self,
        partition: str,
        limit: int,
        cursor: str | None,
        sk_prefix: str | None = None,
        sk_equals: str | None = None,
        keep: Callable[[dict[str, Any]], bool] | None = None,
    ) -> Page:
        """One page of the gsi1 partition, in sort-key order, `limit` items at most."""
        condition = "gsi1pk = :p"
        values: dict[str, Any] = {":p": partition}
        if sk_equals is not None:
            condition += " AND gsi1sk = :s"
            values[":s"] = sk_equals
        elif sk_prefix is not None:
            condition += " AND begins_with(gsi1sk, :s)"
            values[":s"] = sk_prefix
        start = decode_cursor(cursor, partition)
        items: list[dict[str, Any]] = []
        while True:
            request: dict[str, Any] = {
                "TableName": self.name,
                "IndexName": "gsi1",
                "KeyConditionExpression": condition,
                "ExpressionAttributeValues": to_dynamo(values),
                "Limit": limit - len(items),
            }
            if start:
                request["ExclusiveStartKey"] = start
            response = self._client.query(**request)
            batch = [from_dynamo(i) for i in response.get("Items", [])]
            items.extend(i for i in batch if keep is None or keep(i))
            start = response.get("LastEvaluatedKey")
            if not start or len(items) >= limit:
                break
        next_cursor = None
        if start and items:
            last = items[-1]
            next_cursor = encode_cursor(to_dynamo({k: last[k] for k in ("pk", "sk", "gsi1pk", "gsi1sk")}))
        return Page(items=items, next_cursor=next_cursor)

    def transact(self, actions: list[dict[str, Any]], on_cancel: Callable[[list[str]], SluiceError]) -> None:
        from botocore.exceptions import ClientError

        try:
            self._client.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException":
                raise on_cancel(_cancellation_codes(exc)) from None
            raise

    def put(self, item: dict[str, Any]) -> None:
        self._client.put_item(TableName=self.name, Item=to_dynamo(item))

    def update(self, key: dict[str, str], update: str, values: dict[str, Any]) -> None:
        self._client.update_item(
            TableName=self.name,
            Key=to_dynamo(key),
            UpdateExpression=update,
            ExpressionAttributeValues=to_dynamo(values),
        )

    def query_all(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every item a Query returns, page after page."""
        start = None
        while True:
            page = {**request, "TableName": self.name, **({"ExclusiveStartKey": start} if start else {})}
            response = self._client.query(**page)
            yield from (from_dynamo(i) for i in response.get("Items", []))
            start = response.get("LastEvaluatedKey")
            if not start:
                return

    def update_connection_if(
        self, connection_id: str, update: str, condition: str, values: dict[str, Any]
    ) -> Connection | None:
        """One conditional UpdateItem on a connection: the updated connection, or None when the
        condition does not hold (another writer came first, which callers treat as harmless)."""
        from botocore.exceptions import ClientError

        try:
            response = self._client.update_item(
                TableName=self.name,
                Key=to_dynamo(connection_key(connection_id)),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=to_dynamo(values),
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return None
            raise
        return connection_from_item(from_dynamo(response["Attributes"]))

    def query_index_partition(self, partition: str) -> Iterable[dict[str, Any]]:
        """Every item of one gsi1 partition (e.g. an account's connections), page by page."""
        return self.query_all(
            {
                "IndexName": "gsi1",
                "KeyConditionExpression": "gsi1pk = :p",
                "ExpressionAttributeValues": to_dynamo({":p": partition}),
            }
        )

    def query_partition(self, pk: str, sk_prefix: str) -> Iterable[dict[str, Any]]:
        """Every item of one partition under a sort-key prefix (children of an aggregate)."""
        values = {":p": pk, ":s": sk_prefix} if sk_prefix else {":p": pk}
        condition = "pk = :p AND begins_with(sk, :s)" if sk_prefix else "pk = :p"
        return self.query_all(
            {
                "KeyConditionExpression": condition,
                "ExpressionAttributeValues": to_dynamo(values),
                "ConsistentRead": True,
            }
        )

    def delete_many(self, keys: list[dict[str, str]]) -> None:
        for offset in range(0, len(keys), 25):
            requests = [{"DeleteRequest": {"Key": to_dynamo(k)}} for k in keys[offset : offset + 25]]
            pending: dict[str, Any] = {self.name: requests}
            while pending:
                response = self._client.batch_write_item(RequestItems=pending)
                pending = response.get("UnprocessedItems") or {}

    # -- groups & destinations -----------------------------------------------------------------------

    def get_owned(self, key: dict[str, str], account_id: str) -> dict[str, Any] | None:
        item = self.get(key)
        if item is None or item.get("account_id") != account_id:
            return None
        return item

    def update_owned(
        self, key: dict[str, str], account_id: str, changes: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Set attributes of an item the account owns: the updated item, or None when there is none."""
        from botocore.exceptions import ClientError

        names = {f"#a{i}": name for i, name in enumerate(changes)}
        values = {f":v{i}": value for i, value in enumerate(changes.values())}
        try:
            response = self._client.update_item(
                TableName=self.name,
                Key=to_dynamo(key),
                UpdateExpression="SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(changes))),
                ConditionExpression="account_id = :account",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_dynamo({**values, ":account": account_id}),
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return None
            raise
        return from_dynamo(response["Attributes"])

    # -- connections ---------------------------------------------------------------------------------

    def connection_schedules(self, connection_id: str) -> dict[str, Any]:
        """A connection's `schedule`, `resync_schedule` and `next_resync_at`, read alone (the `schedule`
        index does not project them); absent ones are missing from the result."""
        names = ("schedule", "resync_schedule", "next_resync_at")
        response = self._client.get_item(
            TableName=self.name,
            Key=to_dynamo(connection_key(connection_id)),
            ProjectionExpression=", ".join(f"#a{i}" for i in range(len(names))),
            ExpressionAttributeNames={f"#a{i}": name for i, name in enumerate(names)},
            ConsistentRead=True,
        )
        item = from_dynamo(response.get("Item") or {})
        out: dict[str, Any] = {}
        for name in ("schedule", "resync_schedule"):
            if isinstance(item.get(name), str):
                out[name] = json.loads(item[name])
        if item.get("next_resync_at"):
            out["next_resync_at"] = parse_timestamp(item["next_resync_at"])
        return out

    def get_connection(self, account_id: str | None, connection_id: str) -> Connection:
        """A connection by id; `account_id` None means any account (workers acting on events)."""
        item = self.get(connection_key(connection_id))
        if item is None or (account_id is not None and item.get("account_id") != account_id):
            raise ConnectionNotFound(connection_id)
        return connection_from_item(item)

    def create_connection(self, connection: Connection) -> None:
        item = connection_to_item(connection)
        guard = {
            **schema_guard_key(connection.group_id, connection.schema_name),
            "connection_id": connection.id,
        }

        def cancelled(codes: list[str]) -> SluiceError:
            if codes and codes[0] == "ConditionalCheckFailed":
                return GroupNotFound(connection.group_id)
            if len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                return SchemaTaken(connection.schema_name)
            return Conflict("The connection could not be created; retry")

        self.transact(
            [
                {
                    "ConditionCheck": {
                        "TableName": self.name,
                        "Key": to_dynamo(group_key(connection.group_id)),
                        "ConditionExpression": "account_id = :a",
                        "ExpressionAttributeValues": to_dynamo({":a": connection.account_id}),
                    }
                },
                {
                    "Put": {
                        "TableName": self.name,
                        "Item": to_dynamo(guard),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Put": {
                        "TableName": self.name,
                        "Item": to_dynamo(item),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ],
            cancelled,
        )

    def replace_connection(self, connection: Connection, expected_version: int) -> Connection:
        """Write a changed connection if nobody changed it since `expected_version` was read."""
        from botocore.exceptions import ClientError

        saved = connection.model_copy(update={"version": expected_version + 1})
        try:
            self._client.put_item(
                TableName=self.name,
                Item=to_dynamo(connection_to_item(saved)),
                ConditionExpression="version = :v",
                ExpressionAttributeValues=to_dynamo({":v": expected_version}),
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise ConcurrentUpdate() from None
            raise
        return saved

    def modify_connection(
        self,
        account_id: str | None,
        connection_id: str,
        change: Callable[[Connection], Connection | None],
        attempts: int = 3,
    ) -> tuple[Connection, Connection | None]:
        """Read, change and write a connection, conditional on its version; when another writer came
        first, read again and redo the change (no lost updates). `change` returns the connection to
        write, or None to write nothing. Returns what was read and what was written (or None)."""
        for _ in range(attempts):
            current = self.get_connection(account_id, connection_id)
            changed = change(current)
            if changed is None:
                return current, None
            try:
                return current, self.replace_connection(changed, current.version)
            except ConcurrentUpdate:
                continue
        raise ConcurrentUpdate()

    def delete_connection(self, connection: Connection) -> None:
        def cancelled(codes: list[str]) -> SluiceError:
            if codes and codes[0] == "ConditionalCheckFailed":
                return ConnectionNotFound(connection.id)
            return ConcurrentUpdate()

        self.transact(
            [
                {
                    "Delete": {
                        "TableName": self.name,
                        "Key": to_dynamo(connection_key(connection.id)),
                        "ConditionExpression": "account_id = :a",
                        "ExpressionAttributeValues": to_dynamo({":a": connection.account_id}),
                    }
                },
                {
                    "Delete": {
                        "TableName": self.name,
                        "Key": to_dynamo(schema_guard_key(connection.group_id, connection.schema_name)),
                    }
                },
            ],
            cancelled,
        )
        # Children (state snapshots, sync runs) live in the connection's partition.
        children = [
            {"pk": i["pk"], "sk": i["sk"]}
            for i in self.query_partition(connection_key(connection.id)["pk"], "")
        ]
        self.delete_many(children)

    # -- Connector SDK packages ------------------------------------------------------------------------

    def put_package(self, item: dict[str, Any], expected_version: int | None) -> None:
        """Create a package item (`expected_version` None) or replace it if nobody changed it since."""
        from botocore.exceptions import ClientError

        package_id = str(item["id"])
        full = {
            **item,
            **package_key(package_id),
            "gsi1pk": account_packages_partition(str(item["account_id"])),
            "gsi1sk": package_id,
        }
        if expected_version is None:
            condition, values = "attribute_not_exists(pk)", None
        else:
            condition, values = "version = :v", to_dynamo({":v": expected_version})
        try:
            self._client.put_item(
                TableName=self.name,
                Item=to_dynamo(full),
                ConditionExpression=condition,
                **({"ExpressionAttributeValues": values} if values else {}),
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise ConcurrentUpdate() from None
            raise

    def delete_package(self, account_id: str, package_id: str, expected_version: int) -> None:
        from botocore.exceptions import ClientError

        try:
            self._client.delete_item(
                TableName=self.name,
                Key=to_dynamo(package_key(package_id)),
                ConditionExpression="account_id = :a AND version = :v",
                ExpressionAttributeValues=to_dynamo({":a": account_id, ":v": expected_version}),
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise ConcurrentUpdate() from None
            raise

    def package_users(self, account_id: str) -> dict[str, list[str]]:
        """The account's connections by the package their config names (one Query on the account's
        connections)."""
        users: dict[str, list[str]] = {}
        for item in self.query_index_partition(account_connections_partition(account_id)):
            config = item.get("config")
            if isinstance(config, str):
                config = json.loads(config)
            if isinstance(config, dict) and isinstance(config.get("package_id"), str):
                users.setdefault(config["package_id"], []).append(str(item["id"]))
        return {package_id: sorted(ids) for package_id, ids in users.items()}

    def connections_using_package(self, account_id: str, package_id: str) -> list[str]:
        return self.package_users(account_id).get(package_id, [])


def get_store() -> Store:
    from sluice.aws import client
    from sluice.settings import get_settings

    return Store(client("dynamodb"), get_settings().table_name)
