"""Setup tests of the `postgres` source: each says exactly what is wrong and how to fix it."""

from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING, Any, Literal

from sluice.connections.model import SetupTestResult
from sluice.sources.base import SetupTestOptions, SourceError
from sluice.sources.postgres.client import discover, first_line, ident, open_connection, sql

if TYPE_CHECKING:
    import psycopg

    from sluice.sources.postgres import PostgresConfig

Status = Literal["PASSED", "WARNING", "FAILED", "SKIPPED"]
TITLES = (
    "Connecting to the host",
    "Authenticating",
    "Reading the tables",
    "Checking the WAL level",
    "Checking the replication slot",
    "Checking the publication",
)


def setup_tests(config: PostgresConfig, options: SetupTestOptions) -> list[SetupTestResult]:
    from sluice.outbound import resolve

    results: list[SetupTestResult] = []
    started = time.monotonic()

    def add(status: Status, message: str, details: Any = None) -> None:
        results.append(
            SetupTestResult(title=TITLES[len(results)], status=status, message=message, details=details)
        )

    def skip_rest(reason: str) -> list[SetupTestResult]:
        while len(results) < len(TITLES):
            add("SKIPPED", reason)
        return results

    where = f"{config.host}:{config.port}"
    try:
        address = resolve(config.host, config.port)
        with socket.create_connection((address, config.port), timeout=min(10.0, options.timeout)):
            pass
    except SourceError as exc:
        add("FAILED", str(exc))
        return skip_rest("Skipped because 'Connecting to the host' failed")
    except OSError as exc:
        add(
            "FAILED",
            f"Cannot reach {where}: {exc.strerror or exc}. Check the host, the port and the firewall",
        )
        return skip_rest("Skipped because 'Connecting to the host' failed")
    add("PASSED", f"Reached {where}")

    try:
        connection = open_connection(config, address)
    except SourceError as exc:
        add("FAILED", str(exc))
        return skip_rest("Skipped because 'Authenticating' failed")
    with connection:
        add("PASSED", f"Signed in to '{config.database}' as '{config.user}'")
        import psycopg

        try:
            _tables_test(connection, config, add)
            if config.update_method != "WAL_PGOUTPUT":
                return skip_rest("Not used by update_method XMIN (it reads xmin, not the WAL)")
            if time.monotonic() - started > options.timeout:
                return skip_rest(f"The setup tests ran out of time (timeout {options.timeout:.0f}s)")
            _wal_tests(connection, config, add)
        except psycopg.Error as exc:
            add("FAILED", f"The database refused a check: {first_line(exc)}")
            return skip_rest("Skipped after an earlier check failed")
    return results


def _tables_test(connection: psycopg.Connection[Any], config: PostgresConfig, add: Any) -> None:
    try:
        tables = discover(connection, config)
    except SourceError as exc:
        add("FAILED", str(exc))
        return
    if not tables:
        add("WARNING", f"Schema '{config.source_schema}' has no tables yet", {"tables": 0})
        return
    denied = [
        t.name
        for t in tables
        if not connection.execute("SELECT has_table_privilege(%s::oid, 'SELECT')", [t.oid]).fetchone()[0]  # type: ignore[index]
    ]
    if denied:
        names = ", ".join(f"{ident(config.source_schema)}.{ident(n)}" for n in denied)
        add(
            "FAILED",
            f"User '{config.user}' may not read {len(denied)} of {len(tables)} tables: "
            f"GRANT SELECT ON {names} TO {ident(config.user)}",
            {"tables": denied},
        )
        return
    keyless = [t.name for t in tables if not t.primary_key]
    details = {"tables": [t.name for t in tables], "without_primary_key": keyless}
    add(
        "PASSED",
        f"User '{config.user}' can read all {len(tables)} tables of '{config.source_schema}'",
        details,
    )


def _wal_tests(connection: psycopg.Connection[Any], config: PostgresConfig, add: Any) -> None:
    import psycopg

    level = connection.execute("SHOW wal_level").fetchone()
    if level is None or level[0] != "logical":
        add(
            "FAILED",
            f"wal_level is '{level[0] if level else '?'}', logical replication needs 'logical': set "
            "wal_level = logical (on RDS: rds.logical_replication = 1) and restart the server",
        )
    else:
        add("PASSED", "wal_level is 'logical'")

    slot = config.replication_slot or ""
    role = connection.execute(
        "SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    found = connection.execute(
        "SELECT plugin, database FROM pg_replication_slots WHERE slot_name = %s", [slot]
    ).fetchone()
    if not (role and role[0]):
        add(
            "FAILED",
            f"User '{config.user}' lacks the REPLICATION attribute needed to read the slot: "
            f"ALTER ROLE {ident(config.user)} WITH REPLICATION",
        )
    elif found is None:
        create = f"SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')"
        if not config.create_slot_and_publication:
            add("FAILED", f"The replication slot '{slot}' does not exist: create it with {create}")
        else:
            try:
                connection.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", [slot])
                add("PASSED", f"Created the replication slot '{slot}' (pgoutput)")
            except psycopg.Error as exc:
                add(
                    "FAILED",
                    f"Could not create the replication slot '{slot}' ({first_line(exc)}): "
                    f"an administrator can run {create}",
                )
    elif found[0] != "pgoutput" or found[1] != config.database:
        add(
            "FAILED",
            f"The replication slot '{slot}' uses plugin '{found[0]}' in database '{found[1]}': "
            f"Sluice needs a 'pgoutput' slot in '{config.database}'",
        )
    else:
        add("PASSED", f"The replication slot '{slot}' is a pgoutput slot in '{config.database}'")
    _publication_test(connection, config, add)


def _publication_test(connection: psycopg.Connection[Any], config: PostgresConfig, add: Any) -> None:
    import psycopg

    publication = config.publication_name or ""
    try:
        tables = discover(connection, config)
    except SourceError:
        tables = []
    names = ", ".join(f"{ident(config.source_schema)}.{ident(t.name)}" for t in tables)
    exists = connection.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", [publication]).fetchone()
    if exists is None:
        create = f"CREATE PUBLICATION {ident(publication)} FOR TABLE {names or '<the tables to sync>'}"
        if not config.create_slot_and_publication or not tables:
            add("FAILED", f"The publication '{publication}' does not exist: create it with {create}")
            return
        try:
            connection.execute(sql(create))
        except psycopg.Error as exc:
            add(
                "FAILED",
                f"Could not create the publication '{publication}' ({first_line(exc)}): "
                f"the tables' owner can run {create}",
            )
            return
        add("PASSED", f"Created the publication '{publication}' for {len(tables)} table(s)")
        return
    published = {
        str(row[0])
        for row in connection.execute(
            "SELECT tablename FROM pg_publication_tables WHERE pubname = %s AND schemaname = %s",
            [publication, config.source_schema],
        ).fetchall()
    }
    missing = [t.name for t in tables if t.name not in published]
    if not missing:
        add("PASSED", f"The publication '{publication}' includes every table")
        return
    listed = ", ".join(f"{ident(config.source_schema)}.{ident(n)}" for n in missing)
    alter = f"ALTER PUBLICATION {ident(publication)} ADD TABLE {listed}"
    if config.create_slot_and_publication:
        try:
            connection.execute(sql(alter))
            add("PASSED", f"Added {len(missing)} table(s) to the publication '{publication}'")
            return
        except psycopg.Error as exc:
            add(
                "FAILED",
                f"Could not add {len(missing)} table(s) to the publication '{publication}' "
                f"({first_line(exc)}): the owner can run {alter}",
                {"missing": missing},
            )
            return
    add(
        "FAILED",
        f"The publication '{publication}' does not include {len(missing)} table(s): {alter}",
        {"missing": missing},
    )
