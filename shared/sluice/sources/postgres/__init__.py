"""The `postgres` source: tables of a PostgreSQL schema, then their changes.

Config fields are Fivetran's for its PostgreSQL connector (`host`, `port`, `database`, `user`,
`password`, `update_method` = `WAL_PGOUTPUT` or `XMIN`, `replication_slot`, `publication_name`),
plus Sluice's `schema` (the destination schema, as for every service), `source_schema` (the schema
read, `public` by default), `tables` (a subset of its tables; all of them when absent) and
`create_slot_and_publication` (the setup tests create what is missing).
The database host is reached only through the outbound guard's address rules.

How each method reads, and what the state holds: `sluice.sources.postgres.reading`. Setup tests:
`sluice.sources.postgres.setup`. psycopg is imported only where a database is used: the API
functions import this module for its config model.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from sluice.contract import Operation, TableSpec
from sluice.sources.base import (
    ADVANCED,
    ALL_NETWORKING_METHODS,
    Name,
    Secret,
    SecretDestination,
    Service,
    ServiceConfig,
    SetupTestOptions,
    SourceError,
    TunnelFields,
    secret_destinations,
    secret_paths,
)

# PostgreSQL's rule for slot names; publications are ordinary identifiers.
SlotName = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9_]+$")]
PgName = Annotated[str, Field(min_length=1, max_length=63)]


class PostgresConfig(ServiceConfig, TunnelFields):
    schema_: Name = Field(alias="schema")
    # The password goes to host:port: changing either needs the password again.
    host: Annotated[str, Field(min_length=1, max_length=253), SecretDestination()]
    port: Annotated[int, Field(ge=1, le=65535), SecretDestination()] = 5432
    database: PgName
    user: PgName
    password: Secret
    update_method: Literal["WAL_PGOUTPUT", "XMIN"] = "WAL_PGOUTPUT"
    replication_slot: SlotName | None = None
    publication_name: PgName | None = None
    source_schema: PgName = "public"
    tables: list[PgName] | None = None
    # Setup tests create a missing slot and publication (or add missing tables to it) when set.
    create_slot_and_publication: Annotated[bool, ADVANCED] = False

    @model_validator(mode="after")
    def _replication_needs_a_slot_and_publication(self) -> PostgresConfig:
        if self.update_method == "WAL_PGOUTPUT":
            missing = [
                name for name in ("replication_slot", "publication_name") if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(f"update_method WAL_PGOUTPUT needs {' and '.join(missing)}")
        return self


def parse(config: dict[str, Any]) -> PostgresConfig:
    try:
        return PostgresConfig.model_validate(config)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) or e["msg"] for e in exc.errors()[:5])
        raise SourceError(f"The postgres config is not valid ({fields})") from None


def tables(config: dict[str, Any]) -> list[TableSpec]:
    from sluice.sources.postgres.client import connected, discover

    parsed = parse(config)
    with connected(parsed) as connection:
        return [TableSpec(t.name, t.primary_key) for t in discover(connection, parsed)]


def extract(config: dict[str, Any], state: dict[str, Any], deadline: float) -> Iterator[Operation]:
    from sluice.sources.postgres.reading import extract as run

    return run(parse(config), state, deadline)


def setup_tests(config: dict[str, Any], options: SetupTestOptions) -> list[Any]:
    from sluice.sources.postgres.setup import setup_tests as run

    return run(parse(config), options)


SERVICE = Service(
    name="postgres",
    title="PostgreSQL",
    description="Tables of a PostgreSQL schema; changes by logical replication (pgoutput) or XMIN",
    config_model=PostgresConfig,
    naming_keys=("schema",),
    secret_paths=frozenset(secret_paths(PostgresConfig)),
    secret_destinations=secret_destinations(PostgresConfig),
    tables=tables,
    tables_need_source=True,
    extract=extract,
    setup_tests=setup_tests,
    networking_methods=ALL_NETWORKING_METHODS,
)
