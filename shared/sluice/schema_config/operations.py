"""The Connection Schema routes: read, pre-create, reload and patch a connection's schema config."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sluice.api.caller import Caller
from sluice.connections.model import Connection, sync_in_progress
from sluice.errors import ConcurrentUpdate, Conflict
from sluice.schema_config.model import ColumnSetting, SchemaConfig
from sluice.schema_config.rules import (
    Change,
    Effects,
    SourceTables,
    TableNotFound,
    capture,
    render,
    render_columns,
)
from sluice.storage.schema_store import SchemaConfigStore
from sluice.storage.store import Store
from sluice.storage.sync_store import SyncStore
from sluice.timestamps import utc_now

SCHEMA_CHANGED = "Schema Changed"
# The KMS encryption context key of a group's hashing salt.
SALT_SCOPE = "group_id"
SALT_FIELD = "hash_salt"
_ATTEMPTS = 3


def sync_modes(store: Store, connection: Connection) -> frozenset[str]:
    """The sync modes the connection's destination can keep."""
    from sluice.destinations import sync_modes_of

    destination = store.get_destination(None, connection.group_id)
    return sync_modes_of(str(destination["service"])) if destination else frozenset({"SOFT_DELETE"})


def source_tables(
    connection: Connection,
    store: Store,
    stored: SchemaConfig | None,
    asked: dict[str, tuple[str, ...]] | None = None,
) -> SourceTables:
    """The source's tables: `asked` (a reload that asked the source), else the service's tables from
    the connection's config, or, for a service that must ask its source for them (postgres, the
    Connector SDK), those the last capture recorded (the read API holds no secrets to ask with)."""
    from sluice.sources import get_service

    service = get_service(connection.service)
    service.check_references(store, connection.account_id, connection.config)
    schema = str(connection.config.get("schema", connection.schema_name))
    if asked is not None:
        keys = asked
    elif service.tables_need_source:
        captured = stored.schemas.get(schema) if stored else None
        keys = {name: tuple(t.primary_key) for name, t in (captured.tables if captured else {}).items()}
    else:
        keys = {t.name: tuple(t.primary_key) for t in service.tables(connection.config)}
    seen = SyncStore(store).columns_seen(connection.model_copy(update={"table_columns": {}}))
    return SourceTables(schema, keys, {**connection.table_columns, **seen})


@dataclass
class Loaded:
    connection: Connection
    source: SourceTables
    stored: SchemaConfig | None
    version: int
    modes: frozenset[str]

    @property
    def effective(self) -> SchemaConfig:
        """The config as syncs will apply it: the stored one with the source's tables captured into it."""
        return capture(self.stored, self.source)[0]


def load(
    caller: Caller, connection_id: str, store: Store, asked: dict[str, tuple[str, ...]] | None = None
) -> Loaded:
    return load_connection(store.get_connection(caller.account_id, connection_id), store, asked)


def load_connection(
    connection: Connection, store: Store, asked: dict[str, tuple[str, ...]] | None = None
) -> Loaded:
    raw, version = SchemaConfigStore(store).get(connection.id)
    stored = SchemaConfig.model_validate(raw) if raw is not None else None
    source = source_tables(connection, store, stored, asked)
    return Loaded(connection, source, stored, version, sync_modes(store, connection))


def effective_schemas(connection: Connection, store: Store) -> dict[str, Any]:
    """The `schemas` of the config as syncs apply it (for the legacy metadata routes and resync scopes)."""
    loaded = load_connection(connection, store)
    return dict(render(loaded.effective, loaded.source, loaded.modes)["schemas"])


def schema_config(caller: Caller, connection_id: str, store: Store) -> dict[str, Any]:
    loaded = load(caller, connection_id, store)
    return render(loaded.effective, loaded.source, loaded.modes)


def table_columns(
    caller: Caller, connection_id: str, schema: str, table: str, store: Store
) -> dict[str, Any]:
    loaded = load(caller, connection_id, store)
    setting = loaded.effective.table(schema, table)
    if setting is None:
        raise TableNotFound(schema, table)
    return {"columns": render_columns(setting, table, loaded.source)}


def precreate(caller: Caller, connection_id: str, body: dict[str, Any], store: Store) -> dict[str, Any]:
    """POST .../schemas: a config for a connection that has none yet, applied at its first capture."""
    loaded = load(caller, connection_id, store)
    if loaded.stored is not None:
        raise Conflict(
            f"Connection with id '{connection_id}' already has a schema config; change it with PATCH"
        )
    config = SchemaConfig.model_validate(
        {
            "schema_change_handling": body.get("schema_change_handling") or "ALLOW_ALL",
            "schemas": body.get("schemas") or {},
        }
    )
    _ensure_salt(store, loaded.connection, config)
    SchemaConfigStore(store).put(loaded.connection.id, config.model_dump(mode="json"), 0)
    return render(config, loaded.source, loaded.modes)


@dataclass(frozen=True)
class Modified:
    data: dict[str, Any]
    message: str


def modify(
    caller: Caller,
    connection_id: str,
    store: Store,
    change: Callable[[SchemaConfig, Loaded, Effects], None],
    message: str,
    exclude: bool = False,
    asked: dict[str, tuple[str, ...]] | None = None,
) -> Modified:
    """Read the config (captured with the source's tables), apply `change`, write it if nobody wrote
    meanwhile (else redo on a fresh read: no lost updates). Tables whose data a change outdated owe
    a re-sync, recorded in the same write; new tables found are announced once, by this writer."""
    for _ in range(_ATTEMPTS):
        loaded = load(caller, connection_id, store, asked)
        config, found = capture(loaded.stored, loaded.source, exclude=exclude)
        effects = Effects()
        change(config, loaded, effects)
        schema = config.schemas.get(loaded.source.schema)
        for table in sorted(effects.resync):
            setting = schema.tables.get(table) if schema else None
            if setting is not None:
                setting.resync_requested += 1
        _ensure_salt(store, loaded.connection, config)
        try:
            SchemaConfigStore(store).put(loaded.connection.id, config.model_dump(mode="json"), loaded.version)
        except ConcurrentUpdate:
            continue
        announce_changes(loaded.connection, found)
        return Modified(
            render(config, loaded.source, loaded.modes),
            _message(message, loaded, sorted(effects.resync), store),
        )
    raise ConcurrentUpdate()


RELOAD_SECONDS = 20.0  # what a reload may spend asking the source for its columns


def reload(caller: Caller, connection_id: str, store: Store, exclude: bool) -> Modified:
    """POST .../schemas/reload: the source's tables, and (where the service can list them) its columns
    now, merged into the config. New columns of a table that had some are changes: blocked first
    under BLOCK_ALL, then announced once (see SchemaPolicy)."""
    connection = store.get_connection(caller.account_id, connection_id)
    asked, discovered, problem = _ask_source(connection)

    def change(config: SchemaConfig, loaded: Loaded, effects: Effects) -> None:
        if config.new_columns_enabled():
            return
        for table, names in discovered.items():
            setting = config.table(loaded.source.schema, table)
            if setting is None or not loaded.source.has_data(table):
                continue
            for column in sorted(names - set(loaded.source.columns(table))):
                setting.columns.setdefault(column, ColumnSetting(enabled=False))

    done = modify(
        caller, connection_id, store, change, "Schema configuration has been reloaded", exclude, asked
    )
    loaded = load(caller, connection_id, store)
    changes: list[Change] = []
    enabled = loaded.effective.new_columns_enabled()
    for table, names in sorted(discovered.items()):
        had_columns = loaded.source.has_data(table)
        new = SyncStore(store).add_columns_reporting_new(connection.id, table, names) if names else set()
        if had_columns:
            changes += [Change(loaded.source.schema, table, column, enabled) for column in sorted(new)]
    announce_changes(connection, changes)
    message = done.message if problem is None else f"{done.message}. {problem}"
    return Modified(schema_config(caller, connection_id, store), message)


def _ask_source(
    connection: Connection,
) -> tuple[dict[str, tuple[str, ...]] | None, dict[str, set[str]], str | None]:
    """What the source shows now, with its secrets revealed for the call: its tables (for a service
    whose tables only the source knows), each table's columns (where the service can list them), or
    why it could not be asked."""
    import time

    from sluice.config_secrets import secret_box
    from sluice.connections.setup_tests import revealed_config
    from sluice.sources import get_service
    from sluice.sources.base import SourceError

    service = get_service(connection.service)
    if service.columns is None and not service.tables_need_source:
        return None, {}, None
    plain = revealed_config(connection, secret_box().decrypt)
    scrubber = service.scrubber(plain)
    asked: dict[str, tuple[str, ...]] | None = None
    try:
        if service.tables_need_source:
            asked = {t.name: tuple(t.primary_key) for t in service.tables(plain)}
        found = service.columns(plain, time.monotonic() + RELOAD_SECONDS) if service.columns else {}
    except SourceError as exc:
        return asked, {}, f"The source could not be read: {scrubber.text(str(exc))}"
    return asked, {table: {scrubber.text(n) for n in names} for table, names in found.items()}, None


def _message(base: str, loaded: Loaded, resync: list[str], store: Store) -> str:
    from sluice.sync.events import SyncRequest, request_sync

    connection = store.get_connection(None, loaded.connection.id)
    running = sync_in_progress(connection, utc_now())
    parts = [base]
    if running:
        parts.append("A sync is running: the changes take effect from the next sync")
    if resync:
        names = ", ".join(f"'{loaded.source.schema}.{t}'" for t in resync)
        if running or connection.paused:
            parts.append(f"A re-sync of table(s) {names} will run with the next sync")
        else:
            request_sync(SyncRequest(connection.account_id, connection.id, reason="resync"))
            parts.append(f"A re-sync of table(s) {names} has been triggered")
    return ". ".join(parts)


def announce_changes(connection: Connection, changes: list[Change]) -> None:
    from sluice.events import publish
    from sluice.timestamps import format_timestamp

    for change in changes:
        publish(
            SCHEMA_CHANGED,
            {
                "account_id": connection.account_id,
                "connection_id": connection.id,
                "group_id": connection.group_id,
                "created": format_timestamp(utc_now()),
                **change.detail(),
            },
        )


def _ensure_salt(store: Store, connection: Connection, config: SchemaConfig) -> None:
    """A group gets its salt (random, KMS-encrypted, bound to the group) before its first hashed
    column is stored, so that a sync never finds a hashed column without one."""
    hashed = any(
        column.hashed
        for schema in config.schemas.values()
        for table in schema.tables.values()
        for column in table.columns.values()
    )
    salts = SchemaConfigStore(store)
    if not hashed or salts.group_salt(connection.group_id) is not None:
        return
    from sluice.config_secrets import secret_box

    sealed = secret_box().encrypt(connection.group_id, {SALT_FIELD: secrets.token_hex(32)}, SALT_SCOPE)
    salts.set_group_salt_once(connection.group_id, sealed[SALT_FIELD])
