"""Iceberg lake: the `iceberg` destination against a bare pyiceberg script doing the same commits.

Both write to a moto server on 127.0.0.1 (S3 for the files, Glue for the catalog), each to its own table.
Rows are shaped like the sample API's (id, name, category, price, version, updated_at as ISO text)
and arrive in pages of 1000, as a source yields them.

Historical: N rows into a new table. Sluice: `IcebergDestination.upsert` per page, `flush()` at the end
  (it commits every `BUFFER_ROWS` rows on its own). Bare: per `BUFFER_ROWS` rows, `pa.Table.from_pylist`,
  `updated_at` cast to a timestamp, the two system columns added, `Table.append`: the same commits.
Incremental: M changed rows, keys spread over the whole table, into that table. Sluice: upserts and one
  flush. Bare: the same arrow conversion, then `Table.overwrite(df, overwrite_filter=In("id", keys))`,
  pyiceberg's own copy-on-write replace by key in one transaction.
The figure is bare time / Sluice time (the best of `runs`, which alternate who goes first); the budget
is >= 0.8x.
"""

from __future__ import annotations

import logging
import os
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import Figure

BUDGET = 0.8
PAGE = 1000
_CATEGORIES = ("tools", "garden", "kitchen", "toys", "books")
_T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _row(i: int, version: int) -> dict[str, Any]:
    return {
        "id": i,
        "name": f"Item {i} v{version}",
        "category": _CATEGORIES[i % len(_CATEGORIES)],
        "price": round(1 + (i * 37 % 10_000) / 100, 2),
        "version": version,
        "updated_at": (_T0 + timedelta(seconds=i // 7 + version * 10_000_000)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _pages(ids: list[int], version: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(ids), PAGE):
        yield [_row(i, version) for i in ids[start : start + PAGE]]


@contextmanager
def _lake_environment() -> Iterator[str]:
    """A moto server, and this process's S3 (boto3 and pyarrow) and Glue pointed at it."""
    import boto3
    from moto.server import ThreadedMotoServer

    from sluice.settings import get_settings

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    saved = dict(os.environ)
    os.environ.update(
        AWS_ENDPOINT_URL_S3=endpoint,
        AWS_ENDPOINT_URL_GLUE=endpoint,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
    )
    get_settings.cache_clear()
    try:
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket="bench-lake")
        yield endpoint
    finally:
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()
        server.stop()


def _sluice_side(database: str) -> tuple[Callable[[list[int]], None], Callable[[list[int], int], None]]:
    from sluice.contract import TableSpec
    from sluice.destinations import IcebergDestinationConfig
    from sluice.destinations.iceberg import IcebergDestination

    config = IcebergDestinationConfig(bucket="bench-lake", prefix=database, database=database)
    spec = TableSpec("items", ("id",))
    sync_id = uuid.uuid4().hex

    def load(ids: list[int], version: int = 1, seq: int = 1) -> None:
        destination = IcebergDestination(config)
        for n, page in enumerate(_pages(ids, version)):
            destination.upsert("shop", spec, page, datetime.now(UTC), f"{seq:012d}-{sync_id}-{n:06d}")
        destination.flush()
        destination.close()

    return (lambda ids: load(ids)), (lambda ids, version: load(ids, version, seq=version))


def _bare_side(database: str) -> tuple[Callable[[list[int]], None], Callable[[list[int], int], None]]:
    import boto3
    import pyarrow as pa
    from pyiceberg.catalog.glue import GlueCatalog
    from pyiceberg.expressions import In

    from sluice.destinations.iceberg import BUFFER_ROWS

    endpoint = os.environ["AWS_ENDPOINT_URL_S3"]
    catalog = GlueCatalog(
        "bare",
        client=boto3.client("glue", region_name="us-east-1"),
        **{"s3.endpoint": endpoint, "s3.region": "us-east-1"},
    )
    identifier = (database, "shop__items")
    timestamp = pa.timestamp("us", tz="UTC")

    def arrow(rows: list[dict[str, Any]]) -> pa.Table:
        table = pa.Table.from_pylist(rows)
        at = table.schema.get_field_index("updated_at")
        table = table.set_column(at, "updated_at", table.column(at).cast(timestamp))
        now = pa.array([datetime.now(UTC)] * len(rows), type=timestamp)
        return table.append_column("_fivetran_synced", now).append_column(
            "_fivetran_deleted", pa.array([False] * len(rows))
        )

    def historical(ids: list[int]) -> None:
        catalog.create_namespace_if_not_exists(database)
        table = None
        buffered: list[dict[str, Any]] = []
        for page in _pages(ids, 1):
            buffered += page
            if len(buffered) >= BUFFER_ROWS:
                table = table or catalog.create_table(
                    identifier, schema=arrow(buffered[:1]).schema, location=f"s3://bench-lake/{database}/bare"
                )
                table.append(arrow(buffered))
                buffered = []
        if buffered:
            table = table or catalog.create_table(
                identifier, schema=arrow(buffered[:1]).schema, location=f"s3://bench-lake/{database}/bare"
            )
            table.append(arrow(buffered))

    def merge(ids: list[int], version: int) -> None:
        rows = [row for page in _pages(ids, version) for row in page]
        table = catalog.load_table(identifier)
        table.overwrite(arrow(rows), overwrite_filter=In("id", ids))

    return historical, merge


def run(rows: int, merge_rows: int, runs: int, out: Callable[[str], None]) -> list[Figure]:
    ids = list(range(1, rows + 1))
    changed = sorted(random.Random(7).sample(ids, min(merge_rows, rows)))
    best: dict[tuple[str, str], float] = {}
    with _lake_environment():
        for attempt in range(runs):
            sides = (("bare", _bare_side), ("sluice", _sluice_side))
            for side, build in sides if attempt % 2 == 0 else reversed(sides):  # neither always goes first
                database = f"bench_{side}_{attempt}"
                historical, merge = build(database)
                started = time.perf_counter()
                historical(ids)
                loaded = time.perf_counter() - started
                started = time.perf_counter()
                merge(changed, 2)
                merged = time.perf_counter() - started
                out(f"  run {attempt + 1} {side:6}: historical {loaded:6.2f} s, incremental {merged:6.2f} s")
                for part, seconds in (("historical", loaded), ("incremental", merged)):
                    best[(side, part)] = min(best.get((side, part), seconds), seconds)
    figures = []
    for part, count in (("historical", rows), ("incremental", len(changed))):
        bare, sluice = best[("bare", part)], best[("sluice", part)]
        figures.append(
            Figure(
                f"iceberg {part} {count:,} rows",
                bare / sluice,
                BUDGET,
                higher_is_better=True,
                detail=f"sluice {sluice:.2f} s, bare pyiceberg {bare:.2f} s",
            )
        )
        out(figures[-1].line())
    return figures
