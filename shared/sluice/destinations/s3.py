"""The `s3` destination: a lake of JSON-lines files, one object per table and batch, at deterministic keys.

    <prefix>/<schema>/<table>/<batch_id>.jsonl           upserted rows, `_fivetran_deleted: false`
    <prefix>/<schema>/<table>/<batch_id>.deletes.jsonl   deleted keys, `_fivetran_deleted: true`

A replayed batch (same `batch_id`) overwrites its own object, so replays never duplicate data.
Objects are uploaded in the background (a few at a time) while the engine reads the next page;
`flush()` waits for them and raises the first failure.
"""

from __future__ import annotations

import json
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sluice.aws import client
from sluice.contract import DELETED_COLUMN, ID_COLUMN, SYNCED_COLUMN
from sluice.destinations import DestinationError, S3DestinationConfig, fivetran_id, json_default
from sluice.tenant_roles import assumed_role_client

if TYPE_CHECKING:
    from sluice.contract import TableSpec

# Uploads in flight at once: enough to hide S3 latency behind the source, few enough to bound memory.
MAX_IN_FLIGHT = 8


def object_key(prefix: str, schema: str, table: str, batch_id: str, *, deletes: bool = False) -> str:
    """Where one batch of one table lands; the same inputs always give the same key."""
    if not batch_id or "/" in batch_id or batch_id in (".", ".."):
        raise DestinationError(f"Invalid batch id '{batch_id}'")
    name = f"{batch_id}.deletes.jsonl" if deletes else f"{batch_id}.jsonl"
    return "/".join(part for part in (prefix.strip("/"), schema, table, name) if part)


def _client(config: S3DestinationConfig, account_id: str) -> Any:
    """Sluice's own S3 client, or one acting as the config's role, assumed with the group's account id
    as ExternalId (whatever the stored config says: the account that owns the group is the tenant)."""
    if not config.role_arn:
        return client("s3")
    from botocore.exceptions import ClientError

    try:
        return assumed_role_client("s3", config.role_arn, account_id, "sluice-s3-destination")
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise DestinationError(
            f"Could not assume the role {config.role_arn} ({code}): its trust policy must allow "
            f"sts:AssumeRole by Sluice's role with the condition sts:ExternalId = '{account_id}'"
        ) from None


def _rfc3339(moment: datetime) -> str:
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class S3Destination:
    """JSON-lines objects in one bucket under one prefix. See `Destination`."""

    def __init__(
        self, config: S3DestinationConfig, account_id: str, max_in_flight: int = MAX_IN_FLIGHT
    ) -> None:
        self.bucket = config.bucket
        self.prefix = config.prefix
        self._s3 = _client(config, account_id)
        self._max_in_flight = max_in_flight
        self._pool: ThreadPoolExecutor | None = None
        self._pending: deque[tuple[str, Future[Any]]] = deque()
        self._failure: DestinationError | None = None
        self._closed = False

    # -- the Destination protocol ----------------------------------------------------------------------------

    def upsert(
        self, schema: str, table: TableSpec, rows: list[dict[str, Any]], synced_at: datetime, batch_id: str
    ) -> int:
        if not rows:
            return 0
        system = {SYNCED_COLUMN: _rfc3339(synced_at), DELETED_COLUMN: False}
        if table.primary_key:
            records = [{**row, **system} for row in rows]
        else:
            records = [{**row, ID_COLUMN: fivetran_id(row), **system} for row in rows]
        self._put(object_key(self.prefix, schema, table.name, batch_id), records)
        return len(records)

    def delete(
        self, schema: str, table: TableSpec, keys: list[dict[str, Any]], synced_at: datetime, batch_id: str
    ) -> int:
        if not keys:
            return 0
        system = {SYNCED_COLUMN: _rfc3339(synced_at), DELETED_COLUMN: True}
        if table.primary_key:
            missing = [name for name in table.primary_key if any(key.get(name) is None for key in keys)]
            if missing:
                raise DestinationError(f"Deletes for table '{table.name}' lack key column '{missing[0]}'")
            records = [{name: key[name] for name in table.primary_key} | system for key in keys]
        else:
            records = [{ID_COLUMN: key.get(ID_COLUMN) or fivetran_id(key)} | system for key in keys]
        self._put(object_key(self.prefix, schema, table.name, batch_id, deletes=True), records)
        return len(records)

    def drop_columns(self, schema: str, table: str, columns: list[str]) -> None:
        # Objects already written are immutable batches: a dropped column only stops appearing in new
        # ones (a blocked column already does), which readers see as null.
        del schema, table, columns

    def flush(self) -> None:
        self._open()
        while self._pending:
            self._settle(*self._pending.popleft())
        if self._failure is not None:
            raise self._failure

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Wait for uploads so that no thread outlives the run; their failures were the flush's to report.
        while self._pending:
            self._settle(*self._pending.popleft())
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def __enter__(self) -> S3Destination:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------------------------

    def _open(self) -> None:
        if self._closed:
            raise DestinationError("The S3 destination is closed")

    def _put(self, key: str, records: list[dict[str, Any]]) -> None:
        self._open()
        if self._failure is not None:
            raise self._failure
        encode = json.JSONEncoder(separators=(",", ":"), default=json_default).encode
        body = ("\n".join(map(encode, records)) + "\n").encode()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self._max_in_flight, thread_name_prefix="sluice-s3")
        while len(self._pending) >= self._max_in_flight:
            self._settle(*self._pending.popleft())
        future = self._pool.submit(
            self._s3.put_object, Bucket=self.bucket, Key=key, Body=body, ContentType="application/x-ndjson"
        )
        self._pending.append((key, future))

    def _settle(self, key: str, future: Future[Any]) -> None:
        try:
            future.result()
        except Exception as exc:  # botocore's errors: kept out of this module's imports
            if self._failure is None:
                failure = DestinationError(f"Writing s3://{self.bucket}/{key} failed: {exc}")
                failure.__cause__ = exc
                self._failure = failure
