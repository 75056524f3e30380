"""The schema config as one sync applies it, in one place upstream of every destination: which tables
are read, which columns land, which land hashed, how new tables and columns are taken, each table's mode.

Built at the start of a sync from the stored config, with the source's tables captured into it (new
ones follow `schema_change_handling` and are announced once). Rows pass through `rows()` before any
destination sees them, so no destination can receive a disabled column or an unhashed hashed one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from sluice.connections.model import Connection
from sluice.contract import TableSpec
from sluice.errors import ConcurrentUpdate, SluiceError
from sluice.schema_config.model import ColumnSetting, SchemaConfig, SchemaSetting, TableSetting
from sluice.schema_config.rules import Change, SourceTables, capture
from sluice.storage.schema_store import SchemaConfigStore
from sluice.storage.store import Store
from sluice.storage.sync_store import SyncStore

_ATTEMPTS = 5

Decrypt = Callable[..., dict[str, str]]


class MissingSalt(SluiceError):
    """A hashed column without its group's salt: refuse to land the values rather than hash them badly."""


def hash_value(salt: bytes, value: Any) -> str | None:
    """SHA-256 of the salt and the value's text (JSON text for anything but a string), in hex; null
    stays null. Two groups have two salts, so their hashes of one value differ and can't be joined."""
    if value is None:
        return None
    return _hasher(hashlib.sha256(salt))(value)


def _hasher(salted: Any) -> Callable[[Any], str]:
    """A hash function over one salt's precomputed digest state (copied per value: cheaper than
    hashing the salt again)."""

    def hashed(value: Any) -> str:
        kind = type(value)
        if kind is str:
            text = value
        elif kind is bool:
            text = "true" if value else "false"
        elif kind is int:
            text = str(value)
        else:
            from sluice.destinations import json_default

            text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=json_default)
        digest = salted.copy()
        digest.update(text.encode())
        return str(digest.hexdigest())

    return hashed


def update_stored(
    store: Store, connection_id: str, change: Callable[[SchemaConfig], SchemaConfig | None]
) -> SchemaConfig:
    """Read, change and write the stored config, redone on a fresh read when another writer came first.
    `change` returns the config to write, or None when nothing changed (nothing is written then)."""
    configs = SchemaConfigStore(store)
    for _ in range(_ATTEMPTS):
        raw, version = configs.get(connection_id)
        current = SchemaConfig.model_validate(raw) if raw is not None else SchemaConfig()
        config = change(current)
        if config is None:
            return current
        try:
            configs.put(connection_id, config.model_dump(mode="json"), version)
            return config
        except ConcurrentUpdate:
            continue
    raise ConcurrentUpdate()


class SchemaPolicy:
    def __init__(
        self,
        store: Store,
        connection: Connection,
        schema: str,
        config: SchemaConfig,
        salt: bytes | None,
        known_columns: dict[str, set[str]],
        initial: bool = False,
    ) -> None:
        self._store = store
        self._connection = connection
        self.schema = schema
        self.config = config
        self._salt = salt
        self._known = known_columns
        self._rules: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
        # True when this sync made the config's first capture: what it finds is no change.
        self._initial = initial
        self._checked: set[str] = set()  # tables looked up (and, if new, added) in this sync

    # ---- built at the start of a sync -----------------------------------------------------------------

    @classmethod
    def prepare(
        cls, store: Store, connection: Connection, schema: str, tables: dict[str, TableSpec], decrypt: Decrypt
    ) -> SchemaPolicy:
        from sluice.schema_config.operations import SALT_FIELD, SALT_SCOPE, announce_changes

        source = SourceTables(schema, {n: tuple(t.primary_key) for n, t in tables.items()}, {})
        found: list[Change] = []
        initial = False

        def captured(config: SchemaConfig) -> SchemaConfig | None:
            nonlocal found, initial
            initial = not config.captured
            updated, found = capture(config, source)
            return updated if updated != config else None

        config = update_stored(store, connection.id, captured)
        announce_changes(connection, found)  # only the writer that added a table found it new
        salt = None
        sealed = SchemaConfigStore(store).group_salt(connection.group_id)
        if sealed is not None:
            plain = decrypt(connection.group_id, {SALT_FIELD: sealed}, SALT_SCOPE)[SALT_FIELD]
            salt = plain.encode()
        seen = SyncStore(store).columns_seen(connection.model_copy(update={"table_columns": {}}))
        known = {t: set(names) for t, names in seen.items()}
        return cls(store, connection, schema, config, salt, known, initial)

    # ---- what the engine asks -------------------------------------------------------------------------

    def _table(self, table: str) -> TableSetting:
        schema = self.config.schemas.get(self.schema)
        setting = schema.tables.get(table) if schema else None
        return setting or TableSetting(enabled=self.config.new_tables_enabled())

    def _table_setting(self, table: str) -> TableSetting:
        """The table's setting in this sync's config, added if the config lacks it."""
        schema = self.config.schemas.setdefault(self.schema, SchemaSetting())
        return schema.tables.setdefault(table, TableSetting(enabled=self.config.new_tables_enabled()))

    def table_enabled(self, table: str) -> bool:
        if table not in self._checked:
            self._checked.add(table)
            schema = self.config.schemas.get(self.schema)
            if schema is None or table not in schema.tables:
                self._add_table(table)
        return self.config.table_enabled(self.schema, table)

    def _add_table(self, table: str) -> None:
        """A table the source yields without having declared it (a Connector SDK connector's): taken
        like a declared new one, by `schema_change_handling`, recorded, and announced once."""
        enabled = self.config.new_tables_enabled()
        added = False

        def add(config: SchemaConfig) -> SchemaConfig | None:
            nonlocal added
            added = False
            schema = config.schemas.setdefault(self.schema, SchemaSetting())
            if table in schema.tables:
                return None  # another sync recorded it first
            schema.tables[table] = TableSetting(enabled=enabled)
            added = True
            return config

        stored = update_stored(self._store, self._connection.id, add)
        setting = stored.schemas[self.schema].tables[table]
        self.config.schemas.setdefault(self.schema, SchemaSetting()).tables[table] = setting.model_copy()
        if added and not self._initial:
            from sluice.schema_config.operations import announce_changes

            announce_changes(self._connection, [Change(self.schema, table, None, setting.enabled)])

    def spec(self, spec: TableSpec) -> TableSpec:
        mode = self._table(spec.name).sync_mode
        return spec if mode == spec.sync_mode else replace(spec, sync_mode=mode)

    def resync_requests(self) -> dict[str, int]:
        """Tables that owe a re-sync (enabled or hashed differently since their data landed)."""
        schema = self.config.schemas.get(self.schema)
        tables = schema.tables.items() if schema else ()
        return {name: t.resync_requested for name, t in tables if t.resync_requested}

    def columns_to_drop(self) -> dict[str, list[str]]:
        schema = self.config.schemas.get(self.schema)
        tables = schema.tables.items() if schema else ()
        return {name: list(t.drop_columns) for name, t in tables if t.drop_columns}

    def rows(
        self, table: str, rows: list[dict[str, Any]], names: set[str] | None = None
    ) -> list[dict[str, Any]]:
        """The rows as the destination may see them: disabled columns gone, hashed ones hashed.
        `names`: every key of the batch, when the caller has it already."""
        if names is None:
            names = set().union(*rows) if rows else set()
        self._discover(table, names)
        disabled, hashed = self._column_rules(table)
        drop = disabled & names
        hash_now = hashed & names
        if not drop and not hash_now:
            return rows
        if hash_now and self._salt is None:
            raise MissingSalt(f"Table '{self.schema}.{table}' has hashed columns but its group has no salt")
        hashing = _hasher(hashlib.sha256(self._salt or b""))
        out = []
        for row in rows:
            row = row.copy()
            for name in drop:
                row.pop(name, None)
            for name in hash_now:
                value = row.get(name)
                if value is not None:
                    row[name] = hashing(value)
            out.append(row)
        return out

    def _column_rules(self, table: str) -> tuple[frozenset[str], frozenset[str]]:
        rules = self._rules.get(table)
        if rules is None:
            columns = self._table(table).columns
            disabled = frozenset(n for n, c in columns.items() if not c.enabled)
            hashed = frozenset(n for n, c in columns.items() if c.enabled and c.hashed)
            rules = self._rules[table] = (disabled, hashed)
        return rules

    def _discover(self, table: str, names: set[str]) -> None:
        """Columns this table never had: recorded (atomically, so each is new to one sync only) and
        announced; under BLOCK_ALL they are disabled in the config before any of their values land."""
        known = self._known.setdefault(table, set())
        fresh = names - known
        if not fresh:
            return
        first_capture = not known  # a table's first columns are its capture, not a change
        if not first_capture and not self.config.new_columns_enabled():
            self._block(table, fresh)
        new = SyncStore(self._store).add_columns_reporting_new(self._connection.id, table, fresh)
        known |= fresh
        if first_capture:
            return
        from sluice.schema_config.operations import announce_changes

        enabled = self.config.new_columns_enabled()
        announce_changes(
            self._connection, [Change(self.schema, table, column, enabled) for column in sorted(new)]
        )

    def _block(self, table: str, columns: set[str]) -> None:
        def blocked(config: SchemaConfig) -> SchemaConfig | None:
            schema = config.schemas.get(self.schema)
            setting = schema.tables.get(table) if schema else None
            if setting is None:
                return None
            added = [c for c in sorted(columns) if c not in setting.columns]
            for column in added:
                setting.columns[column] = ColumnSetting(enabled=False)
            return config if added else None

        update_stored(self._store, self._connection.id, blocked)
        # This sync keeps the config it started with (a PATCH meanwhile applies from the next sync),
        # plus the columns it blocked itself.
        for column in columns:
            self._table_setting(table).columns.setdefault(column, ColumnSetting(enabled=False))
        self._rules.pop(table, None)

    # ---- after the work --------------------------------------------------------------------------------

    def served_resyncs(self, served: dict[str, int]) -> None:
        """Clear the re-sync requests this sync served (a newer request, with a higher number, stays)."""

        def cleared(config: SchemaConfig) -> SchemaConfig | None:
            schema = config.schemas.get(self.schema)
            changed = False
            for table, number in served.items():
                setting = schema.tables.get(table) if schema else None
                if setting is not None and setting.resync_requested == number:
                    setting.resync_requested = 0
                    changed = True
            return config if changed else None

        if served:
            update_stored(self._store, self._connection.id, cleared)

    def dropped(self, done: dict[str, list[str]]) -> None:
        def cleared(config: SchemaConfig) -> SchemaConfig | None:
            schema = config.schemas.get(self.schema)
            changed = False
            for table, columns in done.items():
                setting = schema.tables.get(table) if schema else None
                if setting is not None and setting.drop_columns:
                    setting.drop_columns = [c for c in setting.drop_columns if c not in columns]
                    changed = True
            return config if changed else None

        if done:
            update_stored(self._store, self._connection.id, cleared)
