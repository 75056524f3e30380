"""The domain store: connections, groups, destinations, API keys and accounts in the one table.

Logic modules call these methods with domain values; only the storage package builds DynamoDB
requests (keys in `keys`, item shapes in `items`, sending and error translation in `dynamo`).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from sluice.connections.model import Connection
from sluice.errors import (
    ConcurrentUpdate,
    Conflict,
    ConnectionNotFound,
    GroupNotFound,
    SchemaTaken,
)
from sluice.storage.dynamo import ConditionFailed, DynamoDBClient, send
from sluice.storage.items import (
    Page,
    api_key_item,
    connection_from_item,
    connection_to_item,
    decode_cursor,
    destination_item,
    encode_cursor,
    from_dynamo,
    group_item,
    to_dynamo,
    trial_item,
)
from sluice.storage.keys import (
    PURGE_PARTITION,
    account_connections_partition,
    account_groups_partition,
    account_key,
    account_packages_partition,
    account_webhooks_partition,
    api_key_key,
    connection_key,
    destination_key,
    duckdb_file_key,
    group_key,
    package_key,
    purge_key,
    schema_guard_key,
    webhook_delivery_key,
    webhook_key,
)
from sluice.timestamps import format_timestamp, parse_timestamp

__all__ = [
    "Page",
    "Store",
    "connection_item",
    "connection_key",
    "connection_to_item",
    "get_store",
    "to_dynamo",
]


def connection_item(connection: Connection) -> dict[str, Any]:
    """The connection's item exactly as it is written (DynamoDB's typed form): what its size is
    measured on."""
    return to_dynamo(connection_to_item(connection))


BATCH_WRITE_LIMIT = 25  # DynamoDB's BatchWriteItem maximum
# Index items a filtered list page may read (a filter DynamoDB applies after reading): the bound on
# one page's work whatever the filter matches.
PAGE_READ_BUDGET = 200
# Children a DELETE removes itself (40 BatchWriteItem calls); the scheduler tick deletes the rest.
DELETE_INLINE_ITEMS = 1000
# Children one tick deletes per deleted connection (a partition takes about 1,000 writes a second).
TICK_PURGE_ITEMS = 5000


class Store:
    """The domain table. Every read is a GetItem or a Query on a key."""

    def __init__(self, client: DynamoDBClient, name: str) -> None:
        self.client = client
        self.name = name

    # -- building blocks for the storage package ---------------------------------------------------

    def get(self, key: dict[str, str], consistent: bool = True) -> dict[str, Any] | None:
        response = send(
            self.client.get_item, TableName=self.name, Key=to_dynamo(key), ConsistentRead=consistent
        )
        item = response.get("Item")
        return from_dynamo(item) if item else None

    def put_new(self, item: dict[str, Any], conflict: Callable[[], Exception]) -> None:
        """Write an item that must not exist yet; `conflict()` is raised when it does."""
        try:
            send(
                self.client.put_item,
                TableName=self.name,
                Item=to_dynamo(item),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ConditionFailed:
            raise conflict() from None

    def query_all(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every item a Query returns, page after page."""
        start = None
        while True:
            page = {**request, "TableName": self.name, **({"ExclusiveStartKey": start} if start else {})}
            response = send(self.client.query, **page)
            yield from (from_dynamo(i) for i in response.get("Items", []))
            start = response.get("LastEvaluatedKey")
            if not start:
                return

    def query_partition(self, pk: str, sk_prefix: str, keys_only: bool = False) -> Iterable[dict[str, Any]]:
        """Every item of one partition under a sort-key prefix (children of an aggregate)."""
        values = {":p": pk, ":s": sk_prefix} if sk_prefix else {":p": pk}
        condition = "pk = :p AND begins_with(sk, :s)" if sk_prefix else "pk = :p"
        request: dict[str, Any] = {
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": to_dynamo(values),
            "ConsistentRead": True,
        }
        if keys_only:
            request["ProjectionExpression"] = "pk, sk"
        return self.query_all(request)

    def delete_many(self, keys: Iterable[dict[str, str]]) -> int:
        """Delete items by key, 25 a request; unprocessed ones are retried with backoff. Returns how many."""
        from sluice.storage.dynamo import backoff

        deleted = 0
        batch: list[dict[str, str]] = []

        def flush() -> None:
            pending: dict[str, Any] = {self.name: [{"DeleteRequest": {"Key": to_dynamo(k)}} for k in batch]}
            attempt = 0
            while pending:
                response = send(self.client.batch_write_item, RequestItems=pending)
                pending = dict(response.get("UnprocessedItems") or {})
                if pending:
                    attempt += 1
                    import time

                    time.sleep(backoff(attempt))

        for key in keys:
            batch.append(key)
            deleted += 1
            if len(batch) == BATCH_WRITE_LIMIT:
                flush()
                batch = []
        if batch:
            flush()
        return deleted

    def update(self, key: dict[str, str], update: str, values: dict[str, Any]) -> None:
        send(
            self.client.update_item,
            TableName=self.name,
            Key=to_dynamo(key),
            UpdateExpression=update,
            ExpressionAttributeValues=to_dynamo(values),
        )

    def _get_owned(self, key: dict[str, str], account_id: str | None) -> dict[str, Any] | None:
        item = self.get(key)
        if item is None or (account_id is not None and item.get("account_id") != account_id):
            return None
        return item

    def update_owned(
        self, key: dict[str, str], account_id: str, changes: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Set attributes of an item the account owns: the updated item, or None when there is none
        (or it is another account's)."""
        names = {f"#a{i}": name for i, name in enumerate(changes)}
        values = {f":v{i}": value for i, value in enumerate(changes.values())}
        try:
            response = send(
                self.client.update_item,
                TableName=self.name,
                Key=to_dynamo(key),
                UpdateExpression="SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(changes))),
                ConditionExpression="account_id = :account",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_dynamo({**values, ":account": account_id}),
                ReturnValues="ALL_NEW",
            )
        except ConditionFailed:
            return None
        return from_dynamo(response["Attributes"])

    # -- groups & destinations -----------------------------------------------------------------------

    def create_group(self, group_id: str, account_id: str, name: str, created_at: str) -> dict[str, Any]:
        item = group_item(group_id, account_id, name, created_at)
        self.put_new(item, lambda: Conflict("Group already exists"))
        return item

    def get_group(self, account_id: str, group_id: str) -> dict[str, Any] | None:
        """The group if it exists and belongs to `account_id`."""
        return self._get_owned(group_key(group_id), account_id)

    def list_groups(self, account_id: str, cursor: str | None, limit: int) -> Page:
        return self.query_page(account_groups_partition(account_id), limit, cursor)

    def create_destination(
        self,
        group_id: str,
        account_id: str,
        fields: dict[str, Any],
        duckdb_file: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        """The group's destination and, for a duckdb file, the account's claim on that file for this
        group: both written or neither (another group of the account naming the file is a 409).
        `duckdb_file` is (the file's id, its path as the user gave it)."""
        item = destination_item(group_id, account_id, fields)
        items = [item]
        if duckdb_file is not None:
            claim = {
                **duckdb_file_key(account_id, duckdb_file[0]),
                "type": "duckdb_file",
                "account_id": account_id,
                "group_id": group_id,
            }
            items.append(claim)
        try:
            send(
                self.client.transact_write_items,
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.name,
                            "Item": to_dynamo(i),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    }
                    for i in items
                ],
            )
        except ConditionFailed as failed:
            if failed.failed(0):
                raise Conflict(f"Group '{group_id}' already has a destination") from None
            path = duckdb_file[1] if duckdb_file else ""
            raise Conflict(
                f"Another group of this account already writes to the duckdb file '{path}'"
            ) from None
        return item

    def get_destination(self, account_id: str | None, group_id: str) -> dict[str, Any] | None:
        """A group's destination; `account_id` None means any account (workers acting on events)."""
        return self._get_owned(destination_key(group_id), account_id)

    def update_group(self, account_id: str, group_id: str, changes: dict[str, Any]) -> dict[str, Any] | None:
        """The group with `changes` set, or None when the account has no such group."""
        return self.update_owned(group_key(group_id), account_id, changes)

    def update_destination(
        self, account_id: str, group_id: str, changes: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The destination with `changes` set, or None when the account has no such destination."""
        return self.update_owned(destination_key(group_id), account_id, changes)

    def group_holds_connections(self, account_id: str, group_id: str) -> bool:
        """Whether any connection of the account is in the group (one index item read at most)."""
        page = self.query_page(account_connections_partition(account_id), 1, None, sk_prefix=f"{group_id}#")
        return bool(page.items)

    def delete_group(self, group_id: str, duckdb_file: tuple[str, str] | None) -> None:
        """The group's items (the group, its destination, its schema guards) and the account's claim
        on the duckdb file its destination wrote to (`duckdb_file` is (account id, file id))."""
        items = self.query_partition(group_key(group_id)["pk"], "", keys_only=True)
        keys = [{"pk": i["pk"], "sk": i["sk"]} for i in items]
        self.delete_many(keys + ([duckdb_file_key(*duckdb_file)] if duckdb_file else []))

    def delete_destination(self, group_id: str, duckdb_file: tuple[str, str] | None) -> None:
        """The group's destination and the account's claim on its duckdb file, if it has one."""
        claim = [duckdb_file_key(*duckdb_file)] if duckdb_file else []
        self.delete_many([destination_key(group_id), *claim])

    # -- API keys & accounts -------------------------------------------------------------------------

    def create_api_key(self, api_key: str, fields: dict[str, Any]) -> None:
        self.put_new(api_key_item(api_key, fields), lambda: Conflict(f"API key '{api_key}' already exists"))

    def get_api_key(self, api_key: str) -> dict[str, Any] | None:
        # Strongly consistent: a key works the moment it is created and stops the moment it is
        # revoked (up to the authorizer's cache), never a lagging replica's answer. A GetItem on the
        # table, so the cost is one read unit more per cache miss, not an index.
        return self.get(api_key_key(api_key), consistent=True)

    def delete_api_key(self, api_key: str, account_id: str) -> bool:
        """Revoke a key if it belongs to `account_id`; False when there is no such key of theirs."""
        try:
            send(
                self.client.delete_item,
                TableName=self.name,
                Key=to_dynamo(api_key_key(api_key)),
                ConditionExpression="account_id = :a",
                ExpressionAttributeValues=to_dynamo({":a": account_id}),
            )
        except ConditionFailed:
            return False
        return True

    def set_trial_end(self, account_id: str, trial_ends_at: datetime) -> None:
        send(
            self.client.put_item,
            TableName=self.name,
            Item=to_dynamo(trial_item(account_id, format_timestamp(trial_ends_at) or "")),
        )

    def mark_trial_processed(self, account_id: str, now: datetime) -> None:
        self.update(
            account_key(account_id),
            "SET trial_processed_at = :now REMOVE timer_pk, timer_sk",
            {":now": format_timestamp(now)},
        )

    # -- connections ---------------------------------------------------------------------------------

    def connection_schedules(self, connection_id: str) -> dict[str, Any]:
        """A connection's `schedule`, `resync_schedule` and `next_resync_at` (a datetime), read alone
        (the `schedule` index does not project them); absent ones are missing from the result."""
        names = ("schedule", "resync_schedule", "next_resync_at")
        response = send(
            self.client.get_item,
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
            out["next_resync_at"] = parse_timestamp(str(item["next_resync_at"]))
        return out

    def get_connection(self, account_id: str | None, connection_id: str) -> Connection:
        """A connection by id; `account_id` None means any account (workers acting on events)."""
        item = self._get_owned(connection_key(connection_id), account_id)
        if item is None:
            raise ConnectionNotFound(connection_id)
        return connection_from_item(item)

    def list_connections(
        self, account_id: str, group_id: str | None, schema: str | None, cursor: str | None, limit: int
    ) -> tuple[list[Connection], str | None]:
        """One page of an account's connections, optionally of one group and/or schema."""
        partition = account_connections_partition(account_id)
        if group_id is not None and schema is not None:
            page = self.query_page(partition, limit, cursor, sk_prefix=f"{group_id}#{schema}", exact=True)
        elif group_id is not None:
            page = self.query_page(partition, limit, cursor, sk_prefix=f"{group_id}#")
        elif schema is not None:
            page = self.query_page(partition, limit, cursor, where=("schema", schema))
        else:
            page = self.query_page(partition, limit, cursor)
        return [connection_from_item(i) for i in page.items], page.next_cursor

    def list_connections_of_service(
        self, account_id: str, service: str, cursor: str | None, limit: int
    ) -> tuple[list[Connection], str | None]:
        """One page of an account's connections of one service (e.g. connector_sdk)."""
        page = self.query_page(
            account_connections_partition(account_id), limit, cursor, where=("service", service)
        )
        return [connection_from_item(i) for i in page.items], page.next_cursor

    def query_page(
        self,
        partition: str,
        limit: int,
        cursor: str | None,
        sk_prefix: str | None = None,
        exact: bool = False,
        where: tuple[str, Any] | None = None,
        newest_first: bool = False,
    ) -> Page:
        """One page of the gsi1 partition, in sort-key order (`newest_first`: reversed), `limit` items
        at most.

        `sk_prefix` narrows the key range (`exact`: the sort key equals it); `where` keeps the items
        whose attribute equals a value. Its work is bounded: a filtered page reads at most
        PAGE_READ_BUDGET index items and may then return fewer than `limit` (even none) with a
        cursor. A cursor is given only when something follows: the page reads one item past `limit`.
        """
        condition = "gsi1pk = :p"
        values: dict[str, Any] = {":p": partition}
        if sk_prefix is not None:
            condition += " AND gsi1sk = :s" if exact else " AND begins_with(gsi1sk, :s)"
            values[":s"] = sk_prefix
        names: dict[str, str] = {}
        filter_expression = None
        if where is not None:
            names["#w"] = where[0]
            values[":w"] = where[1]
            filter_expression = "#w = :w"
        scope = json.dumps([sk_prefix, exact, where], default=str) if (sk_prefix or where) else ""
        start = decode_cursor(cursor, partition, scope, "" if sk_prefix is None else sk_prefix)
        wanted = limit + 1
        items: list[dict[str, Any]] = []
        read = 0
        while True:
            request: dict[str, Any] = {
                "TableName": self.name,
                "IndexName": "gsi1",
                "KeyConditionExpression": condition,
                "ExpressionAttributeValues": to_dynamo(values),
                "Limit": wanted - len(items) if filter_expression is None else PAGE_READ_BUDGET - read,
                "ScanIndexForward": not newest_first,
            }
            if filter_expression is not None:
                request["FilterExpression"] = filter_expression
                request["ExpressionAttributeNames"] = names
            if start:
                request["ExclusiveStartKey"] = start
            response = send(self.client.query, **request)
            items.extend(from_dynamo(i) for i in response.get("Items", []))
            read += int(response.get("ScannedCount", 0))
            start = response.get("LastEvaluatedKey")
            if (
                not start
                or len(items) >= wanted
                or (filter_expression is not None and read >= PAGE_READ_BUDGET)
            ):
                break
        if len(items) > limit:
            items = items[:limit]
            last = to_dynamo({k: items[-1][k] for k in ("pk", "sk", "gsi1pk", "gsi1sk")})
            return Page(items=items, next_cursor=encode_cursor(last, scope))
        # Fewer than asked for: the index is exhausted, or the read budget is spent where it stopped.
        return Page(items=items, next_cursor=encode_cursor(start, scope) if start else None)

    def create_connection(self, connection: Connection) -> None:
        guard = {
            **schema_guard_key(connection.group_id, connection.schema_name),
            "connection_id": connection.id,
        }
        try:
            send(
                self.client.transact_write_items,
                TransactItems=[
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
                            "Item": to_dynamo(connection_to_item(connection)),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ],
            )
        except ConditionFailed as failed:
            if failed.failed(0):
                raise GroupNotFound(connection.group_id) from None
            if failed.failed(1):
                raise SchemaTaken(connection.schema_name) from None
            raise Conflict("The connection could not be created; retry") from None

    def replace_connection(self, connection: Connection, expected_version: int) -> Connection:
        """Write a changed connection if nobody changed it since `expected_version` was read."""
        saved = connection.model_copy(update={"version": expected_version + 1})
        try:
            send(
                self.client.put_item,
                TableName=self.name,
                Item=to_dynamo(connection_to_item(saved)),
                ConditionExpression="version = :v",
                ExpressionAttributeValues=to_dynamo({":v": expected_version}),
            )
        except ConditionFailed:
            raise ConcurrentUpdate() from None
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

    def update_connection_if(
        self, connection_id: str, update: str, condition: str, values: dict[str, Any]
    ) -> Connection | None:
        """One conditional UpdateItem on a connection: the updated connection, or None when the
        condition does not hold (another writer came first, which callers treat as harmless)."""
        try:
            response = send(
                self.client.update_item,
                TableName=self.name,
                Key=to_dynamo(connection_key(connection_id)),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=to_dynamo(values),
                ReturnValues="ALL_NEW",
            )
        except ConditionFailed:
            return None
        return connection_from_item(from_dynamo(response["Attributes"]))

    def delete_connection(self, connection: Connection, now: datetime) -> bool:
        """Delete a connection at once, and its children (snapshots, run records: tens of thousands
        for a frequent sync kept 90 days) as far as DELETE_INLINE_ITEMS allows. What is left is
        named by a purge marker, written in the same transaction, that the scheduler tick works
        through (ScheduleIndex.due_purges), so deletion always finishes and a retried DELETE (a 404:
        the connection is gone) orphans nothing. Returns whether every child is gone already."""
        marker = {
            **purge_key(connection.id),
            "type": "purge",
            "id": connection.id,
            "account_id": connection.account_id,
            "timer_pk": PURGE_PARTITION,
            "timer_sk": f"{format_timestamp(now)}#{connection.id}",
        }
        try:
            send(
                self.client.transact_write_items,
                TransactItems=[
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
                    {"Put": {"TableName": self.name, "Item": to_dynamo(marker)}},
                ],
            )
        except ConditionFailed:
            raise ConnectionNotFound(connection.id) from None
        return self.purge_children(connection.id, DELETE_INLINE_ITEMS)

    def purge_children(self, connection_id: str, budget: int) -> bool:
        """Delete up to `budget` children of a deleted connection; when none is left, its purge
        marker too. Returns whether the purge is complete. Safe to repeat, and to run twice at once."""
        pk = connection_key(connection_id)["pk"]
        marker = purge_key(connection_id)
        children = (
            {"pk": str(i["pk"]), "sk": str(i["sk"])}
            for i in self.query_partition(pk, "", keys_only=True)
            if i["sk"] != marker["sk"]
        )
        batch = list(itertools.islice(children, budget + 1))
        self.delete_many(batch[:budget])
        if len(batch) > budget:
            return False
        send(self.client.delete_item, TableName=self.name, Key=to_dynamo(marker))
        return True

    # -- Connector SDK packages ------------------------------------------------------------------------

    def get_package(self, account_id: str, package_id: str) -> dict[str, Any] | None:
        return self._get_owned(package_key(package_id), account_id)

    def list_packages(self, account_id: str, cursor: str | None, limit: int) -> Page:
        return self.query_page(account_packages_partition(account_id), limit, cursor)

    def put_package(self, item: dict[str, Any], expected_version: int | None) -> None:
        """Create a package item (`expected_version` None) or replace it if nobody changed it since."""
        key = package_key(str(item["id"]))
        self._put_account_item(
            item, key, account_packages_partition(str(item["account_id"])), expected_version
        )

    def _put_account_item(
        self, item: dict[str, Any], key: dict[str, str], partition: str, expected_version: int | None
    ) -> None:
        """Write an item an account lists (in its gsi1 `partition`, by id): new when `expected_version` is
        None, else only over that version (ConcurrentUpdate when another write came first)."""
        full = {**item, **key, "gsi1pk": partition, "gsi1sk": str(item["id"])}
        condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        if expected_version is not None:
            condition = {
                "ConditionExpression": "version = :v",
                "ExpressionAttributeValues": to_dynamo({":v": expected_version}),
            }
        try:
            send(self.client.put_item, TableName=self.name, Item=to_dynamo(full), **condition)
        except ConditionFailed:
            raise ConcurrentUpdate() from None

    def delete_package(self, account_id: str, package_id: str, expected_version: int) -> None:
        try:
            send(
                self.client.delete_item,
                TableName=self.name,
                Key=to_dynamo(package_key(package_id)),
                ConditionExpression="account_id = :a AND version = :v",
                ExpressionAttributeValues=to_dynamo({":a": account_id, ":v": expected_version}),
            )
        except ConditionFailed:
            raise ConcurrentUpdate() from None

    def package_users(self, account_id: str) -> dict[str, list[str]]:
        """The account's connections by the package their config names (one Query on the account's
        connections)."""
        users: dict[str, list[str]] = {}
        for item in self.query_all(
            {
                "IndexName": "gsi1",
                "KeyConditionExpression": "gsi1pk = :p",
                "ExpressionAttributeValues": to_dynamo({":p": account_connections_partition(account_id)}),
            }
        ):
            config = item.get("config")
            if isinstance(config, str):
                config = json.loads(config)
            if isinstance(config, dict) and isinstance(config.get("package_id"), str):
                users.setdefault(config["package_id"], []).append(str(item["id"]))
        return {package_id: sorted(ids) for package_id, ids in users.items()}

    def connections_using_package(self, account_id: str, package_id: str) -> list[str]:
        return self.package_users(account_id).get(package_id, [])

    # -- webhooks ----------------------------------------------------------------------------------------

    def get_webhook(self, account_id: str, webhook_id: str) -> dict[str, Any] | None:
        return self._get_owned(webhook_key(webhook_id), account_id)

    def list_webhooks(self, account_id: str, cursor: str | None, limit: int) -> Page:
        return self.query_page(account_webhooks_partition(account_id), limit, cursor)

    def account_webhooks(self, account_id: str) -> list[dict[str, Any]]:
        """Every webhook of an account (one Query of the account's index partition)."""
        return list(
            self.query_all(
                {
                    "IndexName": "gsi1",
                    "KeyConditionExpression": "gsi1pk = :p",
                    "ExpressionAttributeValues": to_dynamo({":p": account_webhooks_partition(account_id)}),
                }
            )
        )

    def put_webhook(self, item: dict[str, Any], expected_version: int | None) -> None:
        """Create a webhook item (`expected_version` None) or replace it if nobody changed it since."""
        key = webhook_key(str(item["id"]))
        self._put_account_item(
            item, key, account_webhooks_partition(str(item["account_id"])), expected_version
        )

    def delete_webhook(self, account_id: str, webhook_id: str) -> bool:
        try:
            send(
                self.client.delete_item,
                TableName=self.name,
                Key=to_dynamo(webhook_key(webhook_id)),
                ConditionExpression="account_id = :a",
                ExpressionAttributeValues=to_dynamo({":a": account_id}),
            )
        except ConditionFailed:
            return False
        return True

    def webhook_delivered(self, webhook_id: str, event_id: str) -> bool:
        return self.get(webhook_delivery_key(webhook_id, event_id)) is not None

    def mark_webhook_delivered(self, webhook_id: str, event_id: str, expires_at: int) -> None:
        item = {
            **webhook_delivery_key(webhook_id, event_id),
            "type": "webhook_delivery",
            "expires_at": expires_at,
        }
        send(self.client.put_item, TableName=self.name, Item=to_dynamo(item))


def get_store() -> Store:
    from typing import cast

    from sluice.aws import client
    from sluice.settings import get_settings

    return Store(cast(DynamoDBClient, client("dynamodb")), get_settings().table_name)
