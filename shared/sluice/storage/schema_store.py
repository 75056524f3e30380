"""A connection's schema config item and its group's hashing salt: the only code that reads or writes them."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from sluice.errors import ConcurrentUpdate, PayloadTooLarge
from sluice.storage.dynamo import ConditionFailed, send
from sluice.storage.items import from_dynamo, to_dynamo
from sluice.storage.keys import group_key, schema_config_key
from sluice.storage.store import Store

# The config is one item, kept as compact JSON: DynamoDB's item limit is 400 KB; leave room for keys.
MAX_SCHEMA_CONFIG_BYTES = 380_000


class SchemaConfigStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, connection_id: str) -> tuple[dict[str, Any] | None, int]:
        """The stored config (None: none yet) and its version (0 when there is none)."""
        item = self.store.get(schema_config_key(connection_id))
        if item is None:
            return None, 0
        return json.loads(str(item["config"])), int(item["version"])

    def put(self, connection_id: str, config: dict[str, Any], expected_version: int) -> int:
        """Write the config if nobody changed it since `expected_version` (0: it must not exist yet).
        Returns the new version; a lost race is ConcurrentUpdate (callers re-read and redo)."""
        text = json.dumps(config, separators=(",", ":"), sort_keys=True)
        if len(text.encode()) > MAX_SCHEMA_CONFIG_BYTES:
            raise PayloadTooLarge(
                f"The schema config would take {len(text.encode())} bytes; at most "
                f"{MAX_SCHEMA_CONFIG_BYTES} fit in its one item"
            )
        item: dict[str, Any] = {
            **schema_config_key(connection_id),
            "type": "schema_config",
            "config": text,
            "version": expected_version + 1,
        }
        condition = "attribute_not_exists(pk)" if expected_version == 0 else "version = :v"
        request: dict[str, Any] = {"ConditionExpression": condition}
        if expected_version:
            request["ExpressionAttributeValues"] = to_dynamo({":v": expected_version})
        try:
            send(self.store.client.put_item, TableName=self.store.name, Item=to_dynamo(item), **request)
        except ConditionFailed:
            raise ConcurrentUpdate() from None
        return expected_version + 1

    # ---- the group's salt for hashed columns -----------------------------------------------------

    def group_salt(self, group_id: str) -> str | None:
        """The ciphertext of the group's salt (KMS, bound to the group), or None when it has none yet."""
        response = send(
            self.store.client.get_item,
            TableName=self.store.name,
            Key=to_dynamo(group_key(group_id)),
            ProjectionExpression="hash_salt",
            ConsistentRead=True,
        )
        item = from_dynamo(response["Item"]) if response.get("Item") else {}
        salt = item.get("hash_salt")
        return str(salt) if salt else None

    def set_group_salt_once(self, group_id: str, ciphertext: str) -> None:
        """Give the group its salt unless it has one: the first writer wins and the salt never changes
        (a changed salt would change every hash already landed)."""
        with contextlib.suppress(ConditionFailed):
            send(
                self.store.client.update_item,
                TableName=self.store.name,
                Key=to_dynamo(group_key(group_id)),
                UpdateExpression="SET hash_salt = :s",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(hash_salt)",
                ExpressionAttributeValues=to_dynamo({":s": ciphertext}),
            )
