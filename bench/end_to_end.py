"""End-to-end sync speed, as a user waits for it: `POST /resync` through the local stack's HTTP API
until `GET /v1/connections/{id}` shows `succeeded_at` moved, against a bare loop doing the same work.

Source:  `python -m local.sample_api` in its own process, `/next_link/items`, pages of 1,000 rows.
Sluice:  `python -m local.stack` in its own process (as `make run` starts it): the request goes through
         the HTTP front, the authorizer and `sync_connection`, the event over the bus (moto
         EventBridge -> SQS -> the worker's poller), then `sync_worker` reads every page and merges it
         into the default group's DuckDB file, whose table already holds every row (a resync of a
         full table). The bench polls the connection every POLL_SECONDS, as a client would.
Bare:    `requests` over the same pages, every page's rows appended to one JSON-lines file, then one
         `read_json` into a temporary staging table and, in one transaction, a delete of the staged ids
         and an insert of the staged rows, into a table that already holds every row.
Rounds are interleaved (Sluice, bare, Sluice, ...), medians of `runs`.

Also reported: the peak RSS of the sync worker's process during each sync (its high-water mark is
reset before the sync through /proc/<pid>/clear_refs) above its resident size before the sync, and
the DynamoDB requests the sync's invocations sent (the stack's GET /_local/stats).
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from bench.common import Figure, median, speed_figure
from bench.throughput import PAGE_SIZE, SampleApiProcess, source_config

BUDGET = 0.8  # Sluice's speed at least 0.8x the bare loop's, end to end
FIXED_COST_BUDGET_SECONDS = 0.100  # a small sync costs at most 100 ms more than the bare loop
PYTHON_ALLOWANCE_MIB = 64  # the sync's own Python objects (a page, a batch), whatever the size
POLL_SECONDS = 0.02
MIB = 2**20


class _Stack:
    """The local stack in its own process, with a session on its API."""

    def __init__(self, data_dir: Path, profile_dir: Path | None = None) -> None:
        from local.processes import PROFILE_VARIABLE
        from tests.support.local_stack import start_local_stack

        env = {PROFILE_VARIABLE: str(profile_dir)} if profile_dir else None
        self.running = start_local_stack(data_dir, env_extra=env)
        self.http = self.running.session()

    def create_connection(self, api: SampleApiProcess, group_id: str | None = None) -> str:
        config = source_config(api.url)
        config["schema"] = "e2e_" + uuid.uuid4().hex[:8]
        reply = self.http.post(
            f"{self.running.url}/v1/connections",
            json={"group_id": group_id or self.running.group_id, "service": "rest_api", "config": config},
            timeout=60,
        )
        reply.raise_for_status()
        return str(reply.json()["data"]["id"])

    def _aws(self) -> dict[str, str]:
        """How to reach the stack's own moto (its printed endpoint and the local credentials)."""
        return {
            "endpoint_url": self.running.aws_endpoint,
            "region_name": "us-east-1",
            "aws_access_key_id": "local",
            "aws_secret_access_key": "local",
        }

    def s3(self) -> Any:
        import boto3

        return boto3.client("s3", **self._aws())

    def s3_group(self, bucket: str) -> str:
        """A group whose destination is `s3` into `bucket` (made on the stack's moto)."""
        self.s3().create_bucket(Bucket=bucket)
        group = self.http.post(f"{self.running.url}/v1/groups", json={"name": "e2e_s3"}, timeout=60)
        group.raise_for_status()
        group_id = str(group.json()["data"]["id"])
        destination = self.http.post(
            f"{self.running.url}/v1/destinations",
            json={"group_id": group_id, "service": "s3", "config": {"bucket": bucket, "prefix": "sluice"}},
            timeout=60,
        )
        destination.raise_for_status()
        return group_id

    def connection(self, connection_id: str) -> dict[str, Any]:
        reply = self.http.get(f"{self.running.url}/v1/connections/{connection_id}", timeout=60)
        reply.raise_for_status()
        return dict(reply.json()["data"])

    def sync(self, connection_id: str, route: str) -> tuple[float, dict[str, Any]]:
        """Seconds from the POST to the GET that shows the sync ended, and the connection then."""
        from tests.support.local_stack import wait_for_sync

        url = f"{self.running.url}/v1/connections/{connection_id}"
        previous = self.connection(connection_id)["succeeded_at"]
        started = time.perf_counter()
        self.http.post(f"{url}/{route}", json={}, timeout=60).raise_for_status()
        data = wait_for_sync(self.http, url, previous, timeout=1800, poll_seconds=POLL_SECONDS)
        elapsed = time.perf_counter() - started
        if data["failed_at"] and (not data["succeeded_at"] or data["failed_at"] > data["succeeded_at"]):
            raise RuntimeError(f"the Sluice sync failed: {data['status']}")
        return elapsed, data

    def last_run(self, connection_id: str) -> dict[str, Any]:
        """The connection's latest run record (by start), read from the stack's own moto."""
        import boto3
        from boto3.dynamodb.conditions import Key

        table = boto3.resource("dynamodb", **self._aws()).Table("sluice-Table")
        found = table.query(
            KeyConditionExpression=Key("pk").eq(f"CONN#{connection_id}") & Key("sk").begins_with("RUN#")
        )["Items"]
        return dict(max(found, key=lambda run: str(run.get("started_at", "")))) if found else {}

    def worker_stats(self) -> dict[str, int]:
        """The sync worker's invocations and DynamoDB requests so far (the stack's GET /_local/stats)."""
        from local.stack import LOCAL_STATS_PATH

        reply = requests.get(self.running.url + LOCAL_STATS_PATH, timeout=60)
        reply.raise_for_status()
        return dict(
            reply.json()["data"].get("SyncWorkerFunction") or {"invocations": 0, "dynamodb_requests": 0}
        )

    def landed(self, schema: str) -> int:
        import duckdb

        with duckdb.connect(str(self.running.default_duckdb), read_only=True) as db:
            row = db.execute(f"SELECT count(DISTINCT id) FROM {schema}.items").fetchone()
        return int(row[0]) if row else 0

    def stop(self) -> None:
        self.running.stop()


def _worker_pid(stack_pid: int) -> int:
    """The stack's sync worker process (local.processes starts it on the first sync)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == stack_pid and b"local.processes" in command and b"SyncWorkerFunction" in command:
            return int(entry.name)
    raise RuntimeError("the stack has no sync worker process")


def _reset_peak_rss(pid: int) -> int:
    """Resets the process's peak RSS (VmHWM) to its current RSS; returns that RSS in bytes."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return _status_kib(pid, "VmRSS") * 1024


def _peak_rss(pid: int) -> int:
    return _status_kib(pid, "VmHWM") * 1024


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


class BareLoop:
    """The yardstick: the plainest fast way to do what the sync does, in this process."""

    def __init__(self, api: SampleApiProcess, work: Path) -> None:
        import duckdb

        self.api = api
        self.work = work
        self.path = work / f"bare-{uuid.uuid4().hex[:8]}.duckdb"
        db = duckdb.connect(str(self.path))
        db.execute(
            "CREATE TABLE items (id BIGINT PRIMARY KEY, name VARCHAR, category VARCHAR, price DOUBLE, "
            "version BIGINT, updated_at TIMESTAMPTZ)"
        )
        db.close()
        self.run()  # the table is full before the timed rounds, as the Sluice one is

    def run(self) -> float:
        import duckdb

        lines = self.work / f"pages-{uuid.uuid4().hex[:8]}.jsonl"
        started = time.perf_counter()
        session = requests.Session()
        url: str | None = f"{self.api.url}/next_link/items?limit={PAGE_SIZE}"
        with lines.open("w") as out:
            while url:
                reply = session.get(url, timeout=60)
                reply.raise_for_status()
                body = reply.json()
                out.writelines(json.dumps(row) + "\n" for row in body["data"])
                following = body["links"]["next"]
                url = self.api.url + following if following else None
        db = duckdb.connect(str(self.path))
        db.execute(
            "CREATE TEMP TABLE staged AS SELECT id, name, category, price, version, updated_at "
            f"FROM read_json('{lines}', format = 'newline_delimited')"
        )
        db.execute("BEGIN")
        db.execute("DELETE FROM items WHERE id IN (SELECT id FROM staged)")
        db.execute("INSERT INTO items SELECT * FROM staged")
        db.execute("COMMIT")
        db.close()
        elapsed = time.perf_counter() - started
        lines.unlink()
        with duckdb.connect(str(self.path), read_only=True) as check:
            row = check.execute("SELECT count(*) FROM items").fetchone()
        if not row or row[0] != self.api.rows:
            raise RuntimeError(f"the bare loop holds {row} rows, the source has {self.api.rows}")
        return elapsed


class S3BareLoop:
    """The yardstick for the `s3` destination: the same pages, each written as one JSON-lines object
    (the rows with `_fivetran_synced` and `_fivetran_deleted`) to the same moto S3, one after another."""

    def __init__(self, api: SampleApiProcess, s3: Any, bucket: str) -> None:
        self.api, self.s3, self.bucket = api, s3, bucket

    def run(self) -> float:
        started = time.perf_counter()
        session = requests.Session()
        url: str | None = f"{self.api.url}/next_link/items?limit={PAGE_SIZE}"
        synced = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        written, page = 0, 0
        while url:
            reply = session.get(url, timeout=60)
            reply.raise_for_status()
            body = reply.json()
            lines = "".join(
                json.dumps({**row, "_fivetran_synced": synced, "_fivetran_deleted": False}) + "\n"
                for row in body["data"]
            )
            self.s3.put_object(Bucket=self.bucket, Key=f"bare/items/{page:06d}.jsonl", Body=lines.encode())
            written += len(body["data"])
            page += 1
            following = body["links"]["next"]
            url = self.api.url + following if following else None
        elapsed = time.perf_counter() - started
        if written != self.api.rows:
            raise RuntimeError(f"the bare loop wrote {written} rows, the source has {self.api.rows}")
        return elapsed


def run(sizes: list[int], runs: int = 3, out: Any = print, s3_rows: int = 0) -> list[Figure]:
    figures: list[Figure] = []
    growth: dict[int, int] = {}
    with tempfile.TemporaryDirectory(prefix="sluice-bench-") as folder:
        work = Path(folder)
        stack = _Stack(work / "stack")
        try:
            for rows in sizes:
                api = SampleApiProcess(rows)
                try:
                    figures += _one_size(stack, api, work, runs, growth, out)
                finally:
                    api.stop()
            if s3_rows:
                api = SampleApiProcess(s3_rows)
                try:
                    figures.append(_s3_destination(stack, api, runs, out))
                finally:
                    api.stop()
        finally:
            stack.stop()
    if growth:
        from sluice.destinations.duckdb import MEMORY_LIMIT_MIB, STAGED_BYTES_LIMIT

        largest = max(growth)
        # Flat means bounded: DuckDB's memory cap, the staged JSON, and a fixed allowance for Python.
        budget = MEMORY_LIMIT_MIB + STAGED_BYTES_LIMIT / MIB + PYTHON_ALLOWANCE_MIB
        figures.append(
            Figure(
                f"sync peak RSS above idle worker, {largest:,} rows",
                growth[largest] / MIB,
                budget,
                unit=" MiB",
                detail=", ".join(f"{rows:,} rows: {growth[rows] / MIB:,.0f} MiB" for rows in sorted(growth)),
            )
        )
        out(figures[-1].line())
    return figures


def _s3_destination(stack: _Stack, api: SampleApiProcess, runs: int, out: Any) -> Figure:
    bucket = "sluice-e2e-" + uuid.uuid4().hex[:8]
    connection_id = stack.create_connection(api, stack.s3_group(bucket))
    stack.sync(connection_id, "sync")
    bare = S3BareLoop(api, stack.s3(), bucket)
    bare.run()
    sluice_times, bare_times = [], []
    for _ in range(runs):  # interleaved
        sluice_times.append(stack.sync(connection_id, "resync")[0])
        bare_times.append(bare.run())
    sluice_s, bare_s = median(sluice_times), median(bare_times)
    out(
        f"      s3 destination, {api.rows:,} rows: POST /resync -> succeeded_at {sluice_s:.3f} s median "
        f"({', '.join(f'{t:.3f}' for t in sluice_times)}), bare requests + put_object per page "
        f"{bare_s:.3f} s ({', '.join(f'{t:.3f}' for t in bare_times)})"
    )
    figure = speed_figure(
        f"sync e2e speed s3 Sluice / bare, {api.rows:,} rows",
        api.rows,
        sluice_times,
        bare_times,
        BUDGET,
        median,
    )
    out(figure.line())
    return figure


def _one_size(
    stack: _Stack, api: SampleApiProcess, work: Path, runs: int, growth: dict[int, int], out: Any
) -> list[Figure]:
    rows = api.rows
    connection_id = stack.create_connection(api)
    schema = stack.connection(connection_id)["schema"]
    stack.sync(connection_id, "sync")  # the first sync fills the table; the timed ones re-sync it
    bare = BareLoop(api, work)
    pid = _worker_pid(stack.running.process.pid)  # the first sync started it; it serves the rest
    sluice_times: list[float] = []
    bare_times: list[float] = []
    peaks: list[int] = []
    costs: list[tuple[int, int]] = []  # (invocations, DynamoDB requests) of each Sluice sync
    for _ in range(runs):  # interleaved, so that drift hits both alike
        before = _reset_peak_rss(pid)
        stats_before = stack.worker_stats()
        seconds, _ = stack.sync(connection_id, "resync")
        peaks.append(_peak_rss(pid) - before)
        stats = stack.worker_stats()
        costs.append(
            (
                stats["invocations"] - stats_before["invocations"],
                stats["dynamodb_requests"] - stats_before["dynamodb_requests"],
            )
        )
        sluice_times.append(seconds)
        bare_times.append(bare.run())
    landed = stack.landed(schema)
    if landed != rows:
        raise RuntimeError(f"Sluice holds {landed} rows, the source has {rows}")
    run = stack.last_run(connection_id)
    if int(run.get("rows_upserted", 0)) != rows:
        raise RuntimeError(f"the last Sluice run upserted {run.get('rows_upserted')} rows, not {rows}")
    sluice_s, bare_s = median(sluice_times), median(bare_times)
    growth[rows] = int(median([float(p) for p in peaks]))
    invocations, dynamodb_requests = costs[-1]
    requests_line = (
        f"; {dynamodb_requests} DynamoDB requests in {invocations} worker invocation(s) for "
        f"{-(-rows // PAGE_SIZE)} pages"
    )
    out(
        f"      {rows:,} rows: POST /resync -> succeeded_at {sluice_s:.3f} s median "
        f"({', '.join(f'{t:.3f}' for t in sluice_times)}), bare loop {bare_s:.3f} s "
        f"({', '.join(f'{t:.3f}' for t in bare_times)}); peak RSS +{growth[rows] / MIB:,.0f} MiB"
        f"{requests_line}"
    )
    if rows < 100_000:
        figure = Figure(
            f"sync e2e fixed cost, {rows:,} rows, over bare",
            (sluice_s - bare_s) * 1000,
            FIXED_COST_BUDGET_SECONDS * 1000,
            unit=" ms",
            detail=f"{sluice_s * 1000:.0f} vs {bare_s * 1000:.0f} ms",
        )
    else:
        figure = speed_figure(
            f"sync e2e speed Sluice / bare, {rows:,} rows", rows, sluice_times, bare_times, BUDGET, median
        )
    out(figure.line())
    return [figure]
