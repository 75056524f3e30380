"""Destination services (a group's destination): their config models and the writer the sync engine calls."""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from base64 import b64encode
from datetime import date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Protocol
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from sluice.contract import DELETED_COLUMN, ID_COLUMN, SYNCED_COLUMN
from sluice.errors import SluiceError
from sluice.sources.base import SecretDestination
from sluice.tenant_roles import ROLE_ARN_PATTERN, TenantAccountId

if TYPE_CHECKING:
    from sluice.contract import TableSpec


class DestinationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


# A duckdb path is relative, inside its account's folder: letters, digits, `_`, `-`, `.` and `/`
# between parts; no absolute path, no `~`, no `.` or `..` part, no backslash, no drive letter.
_PATH_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


def _account_relative_path(path: str) -> str:
    parts = path.split("/")
    if path.startswith("/") or not all(_PATH_PART.fullmatch(part) for part in parts):
        raise ValueError(
            "must be a relative path inside the account's data folder (parts of letters, digits, "
            "'_', '-' and '.', separated by '/'; no absolute path and no '..')"
        )
    return path


def duckdb_file_id(path: str) -> str:
    """What makes two `duckdb` paths of one account the same file (case-insensitive file systems too)."""
    return posixpath.normpath(path).casefold()


class DuckDbConfig(DestinationConfig):
    # A DuckDB database file under `<data folder>/<account id>/` (see sluice.destinations.duckdb).
    path: Annotated[str, Field(min_length=1, max_length=1024), AfterValidator(_account_relative_path)]


class S3DestinationConfig(DestinationConfig):
    bucket: Annotated[str, Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.\-]+[a-z0-9]$")]
    prefix: str = ""
    # A role (often in the tenant's AWS account) to write with, assumed with ExternalId = external_id.
    role_arn: Annotated[str, Field(max_length=2048, pattern=ROLE_ARN_PATTERN)] | None = None
    external_id: TenantAccountId = None


# The same marker as `sluice.sources.base.Secret` (masked, encrypted, a password field in forms),
# repeated so that no destination imports the sources package.
Secret = Annotated[str, Field(json_schema_extra={"secret": True, "format": "password"})]


class PostgresDestinationConfig(DestinationConfig):
    # Where the password goes: a PATCH that moves either must bring the password again.
    host: Annotated[str, Field(min_length=1, max_length=253), SecretDestination()]
    port: Annotated[int, Field(ge=1, le=65535), SecretDestination()] = 5432
    database: Annotated[str, Field(min_length=1, max_length=63)]
    user: Annotated[str, Field(min_length=1, max_length=63)]
    password: Secret
    # Schemas are named `<schema_prefix>_<connection schema>` when set, else by the connection's schema.
    schema_prefix: Annotated[str, Field(max_length=30, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = None


class IcebergDestinationConfig(DestinationConfig):
    """Apache Iceberg tables under `s3://<bucket>/<prefix>/`, registered in the Glue database `database`."""

    bucket: Annotated[str, Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.\-]+[a-z0-9]$")]
    prefix: str = ""
    database: Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[a-z0-9_]+$")]
    region: Annotated[str | None, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")] = None


DESTINATION_CONFIGS: dict[str, type[DestinationConfig]] = {
    "duckdb": DuckDbConfig,
    "s3": S3DestinationConfig,
    "postgres": PostgresDestinationConfig,
    "iceberg": IcebergDestinationConfig,
}


# The table sync modes each writer keeps (SOFT_DELETE: deletes are flagged; LIVE: deleted rows are removed;
# HISTORY: every version is kept with _fivetran_start/_fivetran_end/_fivetran_active).
SYNC_MODES: dict[str, frozenset[str]] = {
    "duckdb": frozenset({"SOFT_DELETE", "LIVE", "HISTORY"}),
    "s3": frozenset({"SOFT_DELETE"}),
    "postgres": frozenset({"SOFT_DELETE", "LIVE", "HISTORY"}),
    "iceberg": frozenset({"SOFT_DELETE", "LIVE"}),
}


def sync_modes_of(service: str) -> frozenset[str]:
    return SYNC_MODES.get(service, frozenset({"SOFT_DELETE"}))


# ---- the writer contract ----------------------------------------------------------------------------------


class DestinationError(SluiceError):
    """Writing to the destination failed; the message is safe to show to the user."""

    code = "DestinationError"


class DestinationLocked(DestinationError):
    """Another process holds the destination's lock (a DuckDB file open in a shell or notebook)."""


class Destination(Protocol):
    """Where one sync run writes its rows. The engine opens one per run and closes it at the end.

    Idempotency: every write is keyed, so replaying the operations since the last committed
    checkpoint (a retried or continued sync) leaves the destination as if they had run once.
    `duckdb` merges by primary key (a replayed row replaces itself); `s3` writes each batch to an
    object key derived from `(schema, table, batch_id)` (a replayed batch overwrites itself). For
    that, the engine must give a replayed batch the same `batch_id` (and, for byte-identical
    objects, the same `synced_at`), and two different batches of one table different ids.

    A table without a primary key (`TableSpec.primary_key == ()`) is keyed by `_fivetran_id`, a
    hash of the row: identical rows collapse into one, as in Fivetran.

    Not thread-safe: one sync run, one thread.
    """

    def upsert(
        self, schema: str, table: TableSpec, rows: list[dict[str, Any]], synced_at: datetime, batch_id: str
    ) -> int:
        """Insert or replace `rows` (whole rows: a column missing from a row becomes null) by primary key.

        Within one batch the last row of a key wins. Returns the number of rows written.
        """
        ...

    def delete(
        self, schema: str, table: TableSpec, keys: list[dict[str, Any]], synced_at: datetime, batch_id: str
    ) -> int:
        """Delete rows by primary key, as the table's `sync_mode` says: SOFT_DELETE keeps them with
        `_fivetran_deleted = true`, LIVE removes them, HISTORY ends their current version.

        `keys` hold the primary key columns (for a table without one: the whole row, or `_fivetran_id`).
        Returns the number of delete records written (`duckdb`: rows that matched).
        """
        ...

    def drop_columns(self, schema: str, table: str, columns: list[str]) -> None:
        """Remove columns (blocked ones the user marked for deletion) from a table, if it has them.
        Safe to repeat."""
        ...

    def flush(self) -> None:
        """Make everything written so far durable; the engine calls it before committing a checkpoint.

        Raises `DestinationError` if an earlier write failed.
        """
        ...

    def close(self) -> None:
        """Release the connection and temporary files. Safe to call twice; never raises for earlier writes."""
        ...


def open_destination(service: str, config: dict[str, Any], account_id: str) -> Destination:
    """The writer for a group's destination (`service` and its stored `config`), for the account that
    owns the group: a `duckdb` file lives in that account's folder."""
    model = DESTINATION_CONFIGS.get(service)
    if model is None:
        raise DestinationError(f"Unknown destination service '{service}'")
    try:
        parsed = model.model_validate(config)
    except ValidationError as exc:
        raise DestinationError(f"Invalid '{service}' destination config: {exc.errors()[0]['msg']}") from exc
    # Deferred: each writer pulls its own client library (duckdb is not in the Lambda layer).
    if isinstance(parsed, DuckDbConfig):
        from sluice.destinations.duckdb import DuckDbDestination

        return DuckDbDestination(parsed, account_id)
    if isinstance(parsed, S3DestinationConfig):
        from sluice.destinations.s3 import S3Destination

        return S3Destination(parsed, account_id)
    if isinstance(parsed, PostgresDestinationConfig):
        from sluice.destinations.postgres import PostgresDestination

        return PostgresDestination(parsed)
    if isinstance(parsed, IcebergDestinationConfig):
        from sluice.destinations.iceberg import IcebergDestination

        return IcebergDestination(parsed)
    raise DestinationError(f"Destination service '{service}' has no writer")


# ---- value encoding shared by the writers ------------------------------------------------------------------


def json_default(value: Any) -> Any:
    """JSON for the values sources may yield beyond JSON's own (timestamps, decimals, ids, bytes)."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)  # a string keeps every digit; a float would not
    if isinstance(value, bytes | bytearray | memoryview):
        return b64encode(value).decode("ascii")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def fivetran_id(row: dict[str, Any]) -> str:
    """The key of a row of a table without a primary key: a hash of its values, stable across replays."""
    data = {k: v for k, v in row.items() if k not in (SYNCED_COLUMN, DELETED_COLUMN, ID_COLUMN)}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=json_default)
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()
