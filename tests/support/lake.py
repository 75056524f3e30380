"""A moto server on 127.0.0.1 for the `iceberg` destination: pyarrow's S3 client and the Glue client reach it
over HTTP (moto's in-process mock cannot intercept pyarrow), plus readers of what landed."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3

REGION = "us-east-1"


@contextmanager
def moto_server() -> Iterator[str]:
    """Start a moto server on 127.0.0.1 (a free port); yields its URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def reset(endpoint: str) -> None:
    """Forget every bucket, object, database and table on the server."""
    import requests

    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()


def point_at(monkeypatch: Any, endpoint: str) -> None:
    """Send S3 (boto3 and pyarrow) and Glue to `endpoint`; every other service stays where it was."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_GLUE", endpoint)
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", REGION),
        ("AWS_DEFAULT_REGION", REGION),
    ):
        if not os.environ.get(name):
            monkeypatch.setenv(name, value)


def new_bucket(endpoint: str) -> str:
    name = f"lake-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint, region_name=REGION).create_bucket(Bucket=name)
    return name


def glue_catalog(endpoint: str) -> Any:
    """An independent reader's catalog (not the writer's): pyiceberg's Glue catalog on the server."""
    from pyiceberg.catalog.glue import GlueCatalog

    glue = boto3.client("glue", endpoint_url=endpoint, region_name=REGION)
    return GlueCatalog("reader", client=glue, **{"s3.endpoint": endpoint, "s3.region": REGION})


def iceberg_rows(endpoint: str, database: str, table: str, key: str = "id") -> dict[Any, dict[str, Any]]:
    """The table's current rows read with pyiceberg, by key (asserting one row per key)."""
    rows = glue_catalog(endpoint).load_table((database, table)).scan().to_arrow().to_pylist()
    by_key = {row[key]: row for row in rows}
    assert len(by_key) == len(rows), "more than one row for a key"
    return by_key


def parquet_rows(endpoint: str, database: str, table: str, key: str = "id") -> dict[Any, dict[str, Any]]:
    """The same rows read by DuckDB from the Parquet data files of the current snapshot.

    The files are copied out of S3 first: DuckDB's httpfs extension is downloaded on first use,
    which an offline machine cannot do.
    """
    import tempfile
    from pathlib import Path

    import duckdb

    loaded = glue_catalog(endpoint).load_table((database, table))
    tasks = list(loaded.scan().plan_files())
    assert all(not task.delete_files for task in tasks), "copy-on-write: no delete files"
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
    with tempfile.TemporaryDirectory() as folder:
        files = []
        for i, task in enumerate(tasks):
            bucket, _, object_key = task.file.file_path.removeprefix("s3://").partition("/")
            local = Path(folder) / f"{i}.parquet"
            s3.download_file(bucket, object_key, str(local))
            files.append(str(local))
        if not files:
            return {}
        with duckdb.connect() as db:
            db.execute("SET TimeZone = 'UTC'")
            cursor = db.execute("SELECT * FROM read_parquet($1, union_by_name = true)", [files])
            columns = [c[0] for c in cursor.description]
            rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    by_key = {row[key]: row for row in rows}
    assert len(by_key) == len(rows), "more than one row for a key"
    return by_key
