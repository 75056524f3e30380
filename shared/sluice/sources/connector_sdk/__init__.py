"""The `connector_sdk` source: a Fivetran Connector SDK connector, deployed with `fivetran deploy`.

The connection's config is what the SDK's deploy sends: `schema`, `package_id`, `secrets_list`
(the connector's configuration.json as key/value pairs, every value secret) and optionally
`python_version`. A sync downloads the package (see `packages`), unpacks it into a folder of its
own and runs `connector.py` in a separate process (`runner.py`) through the SDK's own runner hook.
What the connector emits becomes Sluice's operations:

- `op.upsert` and `op.update` -> `Upserts` (consecutive rows of one table in one batch). The SDK's
  `op.update` changes only the columns it names; Sluice's contract has no partial update (an
  upsert replaces the row by its key), so an update lands as the whole row: every column it does
  not name becomes null in the destination (Fivetran would keep its value). The sync logs a
  warning naming the table the first time each sync applies an update to it, so the connector's
  author sees it; send every column in `op.update` (or use `op.upsert`) to keep them.
- `op.delete` -> `Deletes` by primary key.
- `op.checkpoint(state)` -> `Checkpoint(state)`, after every operation before it; the connector's
  call returns once the engine has taken it (committed, or kept as the pending checkpoint).
- `op.truncate` cannot be expressed by Sluice's contract yet (it has no "every earlier row is
  deleted" operation): the sync logs a warning and leaves the table's rows as they are.
- `log.*` lines go to the sync worker's log; `log.severe` at level ERROR, and a failed sync's
  reason names the last severe line.
- An exception in `update()` or `schema()`, or `op.error()`, fails the sync with its message;
  whatever came after the last checkpoint is not committed.

`schema()` gives the tables and primary keys; a table without one is keyed by `_fivetran_id`. A
connector without `schema()` gets its tables from what it emits. A column `schema()` declares
reaches the destination as its type's Python value: INT/LONG/SHORT int, FLOAT/DOUBLE float,
BOOLEAN bool, JSON dict/list, NAIVE_DATE date, NAIVE_DATETIME naive datetime, UTC_DATETIME aware
datetime (UTC), DECIMAL Decimal, BINARY bytes, STRING/XML str (`_CONVERTERS`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import Field, ValidationError

from sluice.connections.model import SetupTestResult
from sluice.contract import Checkpoint, Deletes, Operation, TableSpec, Upserts
from sluice.observability import logger
from sluice.sources.base import (
    Name,
    Secret,
    Service,
    ServiceConfig,
    SetupTestOptions,
    SourceError,
    secret_paths,
)

BATCH_ROWS = 5_000
_LOG_LEVELS = {"WARNING": "warning", "SEVERE": "error", "ERROR": "error", "CRITICAL": "error"}


class SecretItem(ServiceConfig):
    key: Annotated[str, Field(min_length=1, max_length=256)]
    value: Secret


class ConnectorSdkConfig(ServiceConfig):
    schema_: Name = Field(alias="schema")
    package_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
    secrets_list: list[SecretItem] = Field(default_factory=list)
    python_version: str | None = None
    proxy_host_config_key: str | None = None


def _parse(config: dict[str, Any]) -> ConnectorSdkConfig:
    try:
        return ConnectorSdkConfig.model_validate(config)
    except ValidationError as exc:
        raise SourceError(f"Invalid connector_sdk config: {exc.errors()[0]['msg']}") from None


def configuration(parsed: ConnectorSdkConfig) -> dict[str, str]:
    """The connector's `configuration` argument: its configuration.json, from `secrets_list`."""
    return {item.key: item.value for item in parsed.secrets_list}


def _run(parsed: ConnectorSdkConfig, command: str, state: dict[str, Any] | None = None) -> Any:
    """Start the connector's process on a fresh copy of the package; the caller closes both."""
    from sluice.sources.connector_sdk.packages import unpack
    from sluice.sources.connector_sdk.process import ConnectorProcess

    unpacked = unpack(parsed.package_id)
    try:
        process = ConnectorProcess(
            {
                "command": command,
                "project": str(unpacked.folder),
                "paths": [str(unpacked.dependencies)] if unpacked.dependencies else [],
                "configuration": configuration(parsed),
                "state": state or {},
            }
        )
    except BaseException:
        unpacked.close()
        raise
    return unpacked, process


def check_references(store: Any, account_id: str, config: dict[str, Any]) -> None:
    """The package a connection names must be its own account's: another account's is not found."""
    from sluice.sources.connector_sdk.packages import PackageNotFound

    package_id = config.get("package_id")
    if not isinstance(package_id, str) or store.get_package(account_id, package_id) is None:
        raise PackageNotFound(str(package_id))


def _log(message: dict[str, Any]) -> None:
    level = _LOG_LEVELS.get(str(message.get("level")), "info")
    getattr(logger, level)(str(message.get("message")), extra={"source": "connector_sdk"})


def _utc_datetime(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# What a declared column's value becomes before it reaches the destination, for the types the
# runner's JSON cannot carry (it already gives INT/LONG/SHORT as int, FLOAT/DOUBLE as float,
# BOOLEAN as bool, JSON as dict/list; the SDK itself normalises dates to ISO text, BINARY to bytes,
# which the runner sends as base64).
_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "NAIVE_DATE": lambda v: date.fromisoformat(v),
    "NAIVE_DATETIME": lambda v: datetime.fromisoformat(v).replace(tzinfo=None),
    "UTC_DATETIME": _utc_datetime,
    "DECIMAL": lambda v: Decimal(str(v)),
    "BINARY": lambda v: base64.b64decode(v),
    "STRING": str,
    "XML": str,
}


def _converters(message: dict[str, Any]) -> dict[str, dict[str, tuple[str, Callable[[Any], Any]]]]:
    """Per table, the declared columns whose values need converting, with their declared type."""
    found: dict[str, dict[str, tuple[str, Callable[[Any], Any]]]] = {}
    for table in message.get("tables") or []:
        columns = {
            name: (kind, _CONVERTERS[kind])
            for name, kind in (table.get("columns") or {}).items()
            if kind in _CONVERTERS
        }
        if columns:
            found[table["name"]] = columns
    return found


def _typed(
    table: str, row: dict[str, Any], columns: dict[str, tuple[str, Callable[[Any], Any]]]
) -> dict[str, Any]:
    for name, (kind, convert) in columns.items():
        value = row.get(name)
        if value is not None:
            try:
                row[name] = convert(value)
            except (ValueError, TypeError, ArithmeticError, binascii.Error):
                raise SourceError(
                    f"Table '{table}' column '{name}' is declared {kind} in schema(), "
                    f"but the connector sent a {type(value).__name__} that is not one"
                ) from None
    return row


def _declared(message: dict[str, Any]) -> list[TableSpec]:
    return [TableSpec(t["name"], tuple(t["primary_key"])) for t in message.get("tables") or []]


def tables(config: dict[str, Any]) -> list[TableSpec]:
    parsed = _parse(config)
    unpacked, process = _run(parsed, "schema")
    try:
        for message in process:
            kind = message["t"]
            if kind == "tables":
                return _declared(message)
            if kind == "log":
                _log(message)
            elif kind == "failed":
                raise SourceError(f"schema() failed: {message['message']}")
        raise SourceError(process.exit_message())
    finally:
        process.close()
        unpacked.close()


def extract(config: dict[str, Any], state: dict[str, Any], deadline: float) -> Iterator[Operation]:
    del deadline  # the engine stops at a checkpoint; a connector that never checkpoints runs to its end
    parsed = _parse(config)
    unpacked, process = _run(parsed, "update", state)
    batch: Upserts | Deletes | None = None
    typed: dict[str, dict[str, tuple[str, Callable[[Any], Any]]]] = {}  # from the "tables" message
    updated: set[str] = set()  # tables an op.update has been applied to (warned once each)
    severe: list[str] = []  # the connector's log.severe lines: the failure reason names the last one
    try:
        for message in process:
            kind = message["t"]
            if kind in ("upsert", "update", "delete"):
                table, row = message["table"], message["row"]
                if kind == "update" and table not in updated:
                    updated.add(table)
                    logger.warning(
                        f"op.update on table '{table}' replaces the whole row: the columns it does not "
                        "name become null (Sluice has no partial update; send every column to keep them)",
                        extra={"source": "connector_sdk", "table": table},
                    )
                if table in typed:
                    row = _typed(table, row, typed[table])
                wanted = Deletes if kind == "delete" else Upserts
                if batch is not None and (type(batch) is not wanted or batch.table != table):
                    yield batch
                    batch = None
                if batch is None:
                    batch = Upserts(table, []) if wanted is Upserts else Deletes(table, [])
                (batch.rows if isinstance(batch, Upserts) else batch.keys).append(row)
                if len(batch.rows if isinstance(batch, Upserts) else batch.keys) >= BATCH_ROWS:
                    yield batch
                    batch = None
                continue
            if batch is not None:
                yield batch
                batch = None
            if kind == "tables":
                typed = _converters(message)
            elif kind == "checkpoint":
                yield Checkpoint(message["state"])
                process.ack()
            elif kind == "log":
                _log(message)
                if message.get("level") in ("SEVERE", "CRITICAL"):
                    severe.append(str(message.get("message")))
            elif kind == "truncate":
                logger.warning(
                    "op.truncate is not applied: Sluice cannot yet mark a table's earlier rows deleted",
                    extra={"source": "connector_sdk", "table": message["table"]},
                )
            elif kind == "failed":
                reason = str(message["message"])
                if severe and severe[-1] not in reason:
                    reason = f"{reason} (after log.severe: {severe[-1]})"
                raise SourceError(f"The connector failed: {reason}")
            elif kind == "done":
                return
        raise SourceError(process.exit_message())
    finally:
        process.close()
        unpacked.close()


def setup_tests(config: dict[str, Any], options: SetupTestOptions) -> list[SetupTestResult]:
    """The package imports and `schema()` runs; then, when the connector has a configuration form,
    the configuration has its required fields and dropdown values, and each test the form
    registers passes."""
    del options
    load = "Loading the connector package"
    form = "Checking the configuration against the form"
    parsed = _parse(config)
    try:
        unpacked, process = _run(parsed, "test")
    except SourceError as exc:
        return [SetupTestResult(title=load, status="FAILED", message=str(exc))]
    results: list[SetupTestResult] = []
    try:
        for message in process:
            kind = message["t"]
            if kind == "tables":
                declared = _declared(message)
                names = ", ".join(t.name for t in declared) or "none declared; inferred from update()"
                results.append(
                    SetupTestResult(title=load, status="PASSED", message=f"schema() tables: {names}")
                )
            elif kind == "form":
                results.extend(_form_results(form, message))
            elif kind == "log":
                _log(message)
            elif kind == "failed":
                title = form if results else load
                results.append(SetupTestResult(title=title, status="FAILED", message=str(message["message"])))
                return results
            elif kind == "done":
                if len(results) == 1:
                    results.append(
                        SetupTestResult(title=form, status="SKIPPED", message="No configuration form")
                    )
                return results
        results.append(SetupTestResult(title=load, status="FAILED", message=process.exit_message()))
        return results
    finally:
        process.close()
        unpacked.close()


def _form_results(title: str, message: dict[str, Any]) -> list[SetupTestResult]:
    problems = [f"missing required field '{name}'" for name in message["missing"]]
    problems += [f"'{name}' is not one of the field's options" for name in message["invalid"]]
    results = [
        SetupTestResult(title=title, status="FAILED", message="; ".join(problems))
        if problems
        else SetupTestResult(title=title, status="PASSED")
    ]
    for test in message["tests"]:
        status = "PASSED" if test["passed"] else "FAILED"
        results.append(SetupTestResult(title=str(test["label"]), status=status, message=str(test["message"])))
    return results


SERVICE = Service(
    name="connector_sdk",
    title="Connector SDK",
    description="A custom connector written with the Fivetran Connector SDK, deployed by `fivetran deploy`",
    config_model=ConnectorSdkConfig,
    secret_paths=frozenset(secret_paths(ConnectorSdkConfig)),
    tables=tables,
    tables_need_source=True,
    extract=extract,
    setup_tests=setup_tests,
    check_references=check_references,
)
