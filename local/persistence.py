"""The local stack's control plane kept on disk, so that keys, groups, destinations, connections, state
and run records survive a restart: moto keeps everything in memory and has no persistence of its own.

What is kept, in `<data dir>/control-plane.json` (owner-only permissions: it holds key material):
- every item of every table the template declares, as DynamoDB JSON;
- the KMS key's id and material (connection secrets are encrypted with it, so they decrypt again);
- the values of the template's Secrets Manager secrets (Connect Card links stay valid).

It is written atomically (a temporary file, then a rename) whenever the tables change, checked every
`SAVE_EVERY_SECONDS`, and once more when the stack stops; a stack killed outright loses at most that
much. On the next start the stack loads it into a fresh moto before it serves anything, and re-runs
syncs that were running from their last checkpoint.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from pathlib import Path
from typing import Any

from local.resources import LocalResources

SNAPSHOT_FILE = "control-plane.json"
SAVE_EVERY_SECONDS = 1.0
_FORMAT = 1


def _encode(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"$b64": base64.b64encode(value).decode()}
    raise TypeError(f"cannot keep {type(value).__name__}")


def _decode(obj: dict[str, Any]) -> Any:
    if set(obj) == {"$b64"}:
        return base64.b64decode(obj["$b64"])
    return obj


class ControlPlaneFile:
    def __init__(self, data_dir: Path, session: Any, resources: LocalResources) -> None:
        self.path = data_dir / SNAPSHOT_FILE
        self._session = session
        self._resources = resources
        self._ddb = session.client("dynamodb")
        self._lock = threading.Lock()
        self._last_written = ""
        self.meta: dict[str, str] = {}

    # ---- saving ------------------------------------------------------------------------------------

    def _tables(self) -> dict[str, list[dict[str, Any]]]:
        tables: dict[str, list[dict[str, Any]]] = {}
        for logical_id, name in self._resources.tables.items():
            items: list[dict[str, Any]] = []
            start: dict[str, Any] | None = None
            while True:
                page = self._ddb.scan(
                    TableName=name, ConsistentRead=True, **({"ExclusiveStartKey": start} if start else {})
                )
                items.extend(page.get("Items", []))
                start = page.get("LastEvaluatedKey")
                if not start:
                    break
            tables[logical_id] = sorted(items, key=lambda i: json.dumps(i, sort_keys=True, default=_encode))
        return tables

    def _secrets(self) -> dict[str, str]:
        client = self._session.client("secretsmanager")
        return {
            name: client.get_secret_value(SecretId=name)["SecretString"]
            for name in self._resources.secrets.values()
        }

    def _kms(self) -> dict[str, str]:
        key_id = self._resources.env.get("KMS_KEY_ID")
        if not key_id:
            return {}
        key = _kms_backend(self._session).keys[key_id]
        return {"key_id": key_id, "material": base64.b64encode(key.key_material).decode()}

    def save(self) -> bool:
        """Write the snapshot if anything changed since the last one; True when it wrote."""
        with self._lock:
            tables = self._tables()
            body = {"format": _FORMAT, "meta": self.meta, "tables": tables}
            text = json.dumps(body, sort_keys=True, default=_encode)
            if text == self._last_written:
                return False
            full = {**body, "kms": self._kms(), "secrets": self._secrets()}
            tmp = self.path.with_name(self.path.name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(full, out, default=_encode)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
            self._last_written = text
            return True

    # ---- loading -----------------------------------------------------------------------------------

    def exists(self) -> bool:
        return self.path.exists()

    def restore(self) -> None:
        """Load a saved control plane into the (fresh, empty) resources. Call before serving."""
        saved = json.loads(self.path.read_text(), object_hook=_decode)
        if saved.get("format") != _FORMAT:
            raise SystemExit(f"{self.path} was written by another version; start with --fresh")
        self.meta = dict(saved.get("meta") or {})
        for logical_id, items in saved["tables"].items():
            name = self._resources.tables.get(logical_id)
            if name is None:
                continue  # a table the template no longer declares
            for offset in range(0, len(items), 25):
                pending: dict[str, Any] = {
                    name: [{"PutRequest": {"Item": item}} for item in items[offset : offset + 25]]
                }
                while pending:
                    pending = self._ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        kms = saved.get("kms") or {}
        if kms:
            self._resources.env["KMS_KEY_ID"] = _adopt_kms_key(
                self._session, self._resources.env["KMS_KEY_ID"], kms["key_id"], kms["material"]
            )
        client = self._session.client("secretsmanager")
        for name, value in (saved.get("secrets") or {}).items():
            if name in self._resources.secrets.values():
                client.put_secret_value(SecretId=name, SecretString=value)
        self._last_written = json.dumps(
            {"format": _FORMAT, "meta": self.meta, "tables": self._tables()}, sort_keys=True, default=_encode
        )

    def interrupted_syncs(self) -> list[tuple[str, str, str]]:
        """(account id, connection id, sync id) of every connection whose sync held the lease."""
        from sluice.storage.store import from_dynamo

        found = []
        for item in self._tables().get("Table", []):
            plain = from_dynamo(item)
            if plain.get("type") == "connection" and plain.get("active_sync_id"):
                found.append((str(plain["account_id"]), str(plain["id"]), str(plain["active_sync_id"])))
        return found


def _kms_backend(session: Any) -> Any:
    # moto runs in this process (ThreadedMotoServer): its KMS backend holds the key material.
    from moto.kms.models import kms_backends

    account = session.client("sts").get_caller_identity()["Account"]
    return kms_backends[account][session.region_name]


def _adopt_kms_key(session: Any, created_id: str, saved_id: str, material: str) -> str:
    """Give the key just created the saved key's id and material, so saved ciphertexts decrypt."""
    backend = _kms_backend(session)
    key = backend.keys.pop(created_id)
    key.id = saved_id
    key.arn = key.arn.replace(created_id, saved_id)
    key.key_material = base64.b64decode(material)
    backend.keys[saved_id] = key
    return saved_id
