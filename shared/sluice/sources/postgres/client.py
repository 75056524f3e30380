"""Connecting to the source database (through the outbound guard), its catalog, and its values."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sluice.sources.base import SourceAuthError, SourceError

if TYPE_CHECKING:
    import psycopg

    from sluice.sources.postgres import PostgresConfig

CONNECT_TIMEOUT_SECONDS = 10
# Messages of libpq/the server that mean "these credentials are refused" (connection errors carry no
# SQLSTATE in psycopg, only the server's text).
_AUTH_FAILURES = (
    "password authentication failed",
    "no pg_hba.conf entry",
    "authentication failed",
    "password is required",
    'role "',
)


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    # libpq prefixes "connection to server at ... failed:" which the caller already says.
    _, found, rest = text.partition(" failed: ")
    return rest.strip() if found and text.startswith("connection to server") else text


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql(text: str) -> Any:
    """Text built here from quoted identifiers and placeholders only (psycopg types it as a query)."""
    return text.encode()


def open_connection(config: PostgresConfig, address: str) -> psycopg.Connection[Any]:
    """Connect to `address` (already checked) for `config.host`; errors say what was refused."""
    import psycopg

    from sluice.outbound import Forward

    # Through a proxy agent or an SSH bastion, libpq connects to a loopback forwarder.
    forward = Forward(config.host, address, config.port, CONNECT_TIMEOUT_SECONDS)
    try:
        connection = psycopg.connect(
            host=config.host,
            hostaddr=forward.address,
            port=forward.port,
            dbname=config.database,
            user=config.user,
            password=config.password,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            application_name="sluice",
            autocommit=True,
        )
    except psycopg.Error as exc:
        if isinstance(forward.error, SourceError):
            raise forward.error from None
        reason = first_line(exc)
        where = f"PostgreSQL at {config.host}:{config.port}"
        if any(marker in reason for marker in _AUTH_FAILURES):
            raise SourceAuthError(f"{where} refused user '{config.user}': {reason}") from None
        if "does not exist" in reason and "database" in reason:
            raise SourceError(f"{where} has no database '{config.database}'") from None
        raise SourceError(f"Cannot connect to {where}: {reason}") from None
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute("SET DateStyle = 'ISO'")
    register_loaders(connection)
    return connection


@contextlib.contextmanager
def connected(config: PostgresConfig) -> Iterator[psycopg.Connection[Any]]:
    from sluice.outbound import resolve

    connection = open_connection(config, resolve(config.host, config.port))
    try:
        yield connection
    finally:
        connection.close()


def register_loaders(connection: psycopg.Connection[Any]) -> None:
    """Values every destination can write: intervals as their text, infinite dates as 'infinity'."""
    from psycopg.adapt import Loader
    from psycopg.pq import Format
    from psycopg.types.string import TextLoader

    def tolerant(base: type[Any]) -> type[Any]:
        # Wraps the loader in use (psycopg's C one where installed, which cannot be subclassed):
        # only the rare infinite value takes the Python path.
        class Tolerant(Loader):
            def __init__(self, oid: int, context: Any = None) -> None:
                super().__init__(oid, context)
                self._load = base(oid, context).load

            def load(self, data: Any) -> Any:
                if data[:1] in (b"i", b"-") and bytes(data) in (b"infinity", b"-infinity"):
                    return bytes(data).decode()
                return self._load(data)

        return Tolerant

    for name in ("date", "timestamp", "timestamptz"):
        oid = connection.adapters.types[name].oid
        current = connection.adapters.get_loader(oid, Format.TEXT)
        if current is not None:
            connection.adapters.register_loader(name, tolerant(current))
    for name in ("interval", "money"):
        connection.adapters.register_loader(name, TextLoader)


def value_loader(connection: psycopg.Connection[Any], type_oid: int) -> Callable[[bytes], Any]:
    """Text bytes of a column of `type_oid` -> the Python value a SELECT of it gives."""
    from psycopg.pq import Format

    oid = base_type(connection, type_oid)
    loader_class = connection.adapters.get_loader(oid, Format.TEXT)
    if loader_class is None:
        return lambda data: bytes(data).decode("utf-8")
    loader = loader_class(oid, connection)
    return loader.load


def base_type(connection: psycopg.Connection[Any], type_oid: int) -> int:
    """A domain's base type (a SELECT returns values of the base type; replication names the domain)."""
    from psycopg.pq import Format

    if connection.adapters.get_loader(type_oid, Format.TEXT) is not None:
        return type_oid
    row = connection.execute(
        "SELECT typbasetype FROM pg_type WHERE oid = %s AND typtype = 'd'", [type_oid]
    ).fetchone()
    return int(row[0]) if row and row[0] else type_oid


@dataclass(frozen=True)
class SourceTable:
    """A table of the source schema as this source reads it."""

    schema: str
    name: str
    oid: int
    primary_key: tuple[str, ...]
    columns: tuple[str, ...]  # replicated columns, in table order (generated columns are not)
    types: dict[str, str]  # column -> format_type

    @property
    def qualified(self) -> str:
        return f"{ident(self.schema)}.{ident(self.name)}"


def discover(connection: psycopg.Connection[Any], config: PostgresConfig) -> list[SourceTable]:
    """The selected tables of `config.source_schema` (all of its tables when `tables` is not set)."""
    found = connection.execute(
        "SELECT c.oid, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY c.relname",
        [config.source_schema],
    ).fetchall()
    by_name = {str(name): int(oid) for oid, name in found}
    wanted = list(config.tables) if config.tables is not None else sorted(by_name)
    missing = [name for name in wanted if name not in by_name]
    if missing:
        raise SourceError(
            f"Schema '{config.source_schema}' has no table {', '.join(repr(m) for m in missing)}"
        )
    if not wanted:
        return []
    oids = [by_name[name] for name in wanted]
    columns = connection.execute(
        "SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "WHERE a.attrelid = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' "
        "ORDER BY a.attrelid, a.attnum",
        [oids],
    ).fetchall()
    keys = connection.execute(
        "SELECT i.indrelid, a.attname FROM pg_index i "
        "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, position) "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
        "WHERE i.indrelid = ANY(%s) AND i.indisprimary ORDER BY i.indrelid, k.position",
        [oids],
    ).fetchall()
    tables = []
    for name in wanted:
        oid = by_name[name]
        types = {str(column): str(kind) for rel, column, kind in columns if rel == oid}
        key = tuple(str(column) for rel, column in keys if rel == oid)
        tables.append(SourceTable(config.source_schema, name, oid, key, tuple(types), types))
    return tables
