"""Postgres -> Postgres: the `postgres` source and destination through the SyncEngine, against a bare
psycopg script doing the same work the plainest fast way; then the WAL incremental path's latency.

One real PostgreSQL server on 127.0.0.1 (tests/support/postgres.py: initdb, `wal_level=logical`,
fsync off), a source database and a destination database on it; moto for Sluice's DynamoDB and KMS.
The source table has N rows shaped like the sample API's (id bigint key, name, category, price,
version, updated_at timestamptz).

Historical. Sluice: a `postgres` connection (WAL_PGOUTPUT, its slot and publication created after
  the load) into a group whose `postgres` destination was created through the API; `SyncEngine.run`
  from empty state (keyset pages, COPY into staging and one merge per page, checkpoints on moto).
  Bare: `COPY (SELECT ...) TO STDOUT` from the source streamed into `COPY stage FROM STDIN`, then one
  `INSERT ... SELECT ... ON CONFLICT (id) DO UPDATE` into a fresh keyed table with the two system
  columns, in one transaction. The figure is bare time / Sluice time (best of `runs` each,
  alternating who goes first); the budget is >= 0.8x.
Incremental. M rows updated in one source transaction; seconds from its commit to the moment the
  next `SyncEngine.run` returns with the rows in the destination (checked by a query): reading the
  slot, decoding pgoutput, the merge and the checkpoint. Reported, no budget. A deployed worker adds
  the time until the scheduler invokes it.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import Figure, speed_figure

BUDGET = 0.8
COLUMNS = "id, name, category, price, version, updated_at"
_TABLE = (
    "CREATE TABLE {name} (id bigint PRIMARY KEY, name text, category text, price double precision, "
    "version integer, updated_at timestamp with time zone{extra})"
)


def _load_source(server: Any, database: str, rows: int) -> None:
    server.execute(
        database,
        _TABLE.format(name="items", extra=""),
        "INSERT INTO items SELECT g, 'Item ' || g || ' v1', "
        "(ARRAY['tools','garden','kitchen','toys','books'])[g % 5 + 1], 1 + (g * 37 % 10000) / 100.0, 1, "
        f"timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second' FROM generate_series(1, {rows}) g",
        "VACUUM ANALYZE items",
        "CREATE PUBLICATION bench_pub FOR TABLE items",
        "SELECT pg_create_logical_replication_slot('bench_slot', 'pgoutput')",
    )


def _count(server: Any, database: str, table: str, where: str = "true") -> int:
    with server.connect(database) as con:
        row = con.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()  # type: ignore[arg-type]
    return int(row[0]) if row else 0


def bare_sync(server: Any, source: str, target: str, schema: str) -> float:
    """Seconds for COPY TO from the source, COPY FROM into a staging table, one merge."""
    started = time.perf_counter()
    with server.connect(source) as src, server.connect(target) as dst:
        dst.execute(f"CREATE SCHEMA {schema}")  # type: ignore[arg-type]
        extra = ", _fivetran_synced timestamp with time zone NOT NULL, _fivetran_deleted boolean NOT NULL"
        dst.execute(_TABLE.format(name=f"{schema}.items", extra=extra))  # type: ignore[arg-type]
        with dst.transaction():
            stage = f"CREATE TEMPORARY TABLE stage ON COMMIT DROP AS SELECT {COLUMNS} FROM {schema}.items"
            dst.execute(f"{stage} WITH NO DATA")  # type: ignore[arg-type]
            with (
                src.cursor().copy(f"COPY (SELECT {COLUMNS} FROM items) TO STDOUT") as out,  # type: ignore[arg-type]
                dst.cursor().copy(f"COPY stage ({COLUMNS}) FROM STDIN") as into,  # type: ignore[arg-type]
            ):
                for block in out:
                    into.write(block)
            updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS.split(", ")[1:])
            dst.execute(
                f"INSERT INTO {schema}.items ({COLUMNS}, _fivetran_synced, _fivetran_deleted) "  # type: ignore[arg-type]
                f"SELECT {COLUMNS}, now(), false FROM stage ON CONFLICT (id) DO UPDATE SET {updates}, "
                "_fivetran_synced = EXCLUDED._fivetran_synced, _fivetran_deleted = false"
            )
    return time.perf_counter() - started


class SluiceSide:
    """A group with a `postgres` destination and a `postgres` connection, both created through the API."""

    def __init__(self, server: Any, source: str, target: str, schema: str) -> None:
        from bench import moto_env
        from tests.support.postgres import SUPERUSER, SUPERUSER_PASSWORD

        login = {"host": server.host, "port": server.port, "user": SUPERUSER, "password": SUPERUSER_PASSWORD}
        group = moto_env.invoke("create_group", moto_env.api_event("create_group", body={"name": schema}))
        body = {"group_id": group["id"], "service": "postgres", "config": {**login, "database": target}}
        moto_env.invoke("create_destination", moto_env.api_event("create_destination", body=body))
        config = {
            **login,
            "schema": schema,
            "database": source,
            "update_method": "WAL_PGOUTPUT",
            "replication_slot": "bench_slot",
            "publication_name": "bench_pub",
        }
        body = {
            "group_id": group["id"],
            "service": "postgres",
            "config": config,
            "run_setup_tests": False,
            "schedule_type": "manual",
        }
        self.connection_id = moto_env.invoke(
            "create_connection", moto_env.api_event("create_connection", body=body)
        )["id"]

    def sync(self) -> Any:
        from bench import moto_env
        from sluice.config_secrets import secret_box
        from sluice.storage.store import get_store
        from sluice.sync.engine import SyncEngine
        from sluice.sync.events import SyncRequest

        engine = SyncEngine(get_store(), decrypt=secret_box().decrypt)
        request = SyncRequest(account_id=moto_env.ACCOUNT, connection_id=self.connection_id)
        result = engine.run(request, sync_id=str(uuid.uuid4()), remaining_seconds=lambda: 3600.0)
        if result.status != "SUCCESSFUL":
            raise RuntimeError(f"the Sluice sync failed: {result}")
        return result


def run(rows: int = 1_000_000, changed: int = 10_000, runs: int = 1, out=print) -> list[Figure]:
    import tempfile

    from bench import moto_env
    from tests.support.postgres import postgres_server

    moto_env.quiet_logs()
    with tempfile.TemporaryDirectory(prefix="sluice-bench-") as folder, postgres_server() as server:
        env = moto_env.start(Path(folder))
        try:
            source = server.create_database()
            target = server.create_database()
            loading = time.perf_counter()
            _load_source(server, source, rows)
            out(f"      source: {rows:,} rows loaded in {time.perf_counter() - loading:.0f} s")
            sluice_times: list[float] = []
            bare_times: list[float] = []
            last: SluiceSide | None = None
            for index in range(runs):

                def sluice_run(index: int = index) -> None:
                    nonlocal last
                    side = SluiceSide(server, source, target, f"sluice_{index}")
                    # Each run reads from empty state; the slot is shared, so only the last one's
                    # connection goes on to the incremental part.
                    started = time.perf_counter()
                    result = side.sync()
                    sluice_times.append(time.perf_counter() - started)
                    landed = _count(server, target, f"sluice_{index}.items")
                    if result.rows_upserted != rows or landed != rows:
                        raise RuntimeError(f"Sluice landed {landed} rows ({result.rows_upserted} upserted)")
                    last = side

                def bare_run(index: int = index) -> None:
                    bare_times.append(bare_sync(server, source, target, f"bare_{index}"))
                    if _count(server, target, f"bare_{index}.items") != rows:
                        raise RuntimeError("the bare script did not land every row")

                for side in (sluice_run, bare_run) if index % 2 == 0 else (bare_run, sluice_run):
                    side()
            sluice_best, bare_best = rows / min(sluice_times), rows / min(bare_times)
            out(
                f"      historical {rows:,} rows: Sluice {sluice_best:,.0f} rows/s "
                f"({min(sluice_times):.1f} s), bare COPY/COPY/merge {bare_best:,.0f} rows/s "
                f"({min(bare_times):.1f} s); best of {runs} each"
            )
            figure = speed_figure(
                "postgres historical Sluice / bare psycopg", rows, sluice_times, bare_times, BUDGET
            )
            out(figure.line())
            assert last is not None
            step = max(1, rows // changed)
            with server.connect(source) as con:
                con.execute(
                    "UPDATE items SET version = version + 1, name = name || '+', "  # type: ignore[arg-type]
                    "updated_at = updated_at + interval '1 day' "
                    f"WHERE id % {step} = 0 AND id <= {step * changed}"
                )
            committed = time.perf_counter()  # autocommit: the UPDATE's commit has returned
            result = last.sync()
            seconds = time.perf_counter() - committed
            landed = _count(server, target, f"sluice_{runs - 1}.items", "version = 2")
            if landed != changed or result.rows_upserted != changed:
                raise RuntimeError(
                    f"{landed} changed rows landed ({result.rows_upserted} upserted), not {changed}"
                )
            out(
                f"      WAL incremental: {changed:,} rows updated in one source transaction, {seconds:.2f} s "
                f"from its commit to the rows in the destination ({changed / seconds:,.0f} rows/s; "
                "reported, no budget)"
            )
            return [figure]
        finally:
            env.stop()
