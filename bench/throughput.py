"""Sync throughput: a rest_api sync of the sample API through the real SyncEngine into DuckDB, against a
bare script doing the same work the plainest fast way.

Source: `python -m local.sample_api` in its own process, `/next_link/items`, pages of 1000 rows.
Sluice:  SyncEngine.run (lease, source extract through the guarded session, DuckDB upsert by primary
         key with type inference and `_fivetran_*` columns, checkpoints to DynamoDB on moto).
Bare:    `requests` over the same pages; each page body written to a temp file and merged with
         `INSERT OR REPLACE ... SELECT ... FROM read_json(<file>)` into a table keyed by `id`.
Each side syncs into a fresh DuckDB file, runs interleaved; the best run of each is compared.
"""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench import moto_env
from bench.common import ROOT, Figure, interleaved, median, speed_figure
from local.sample_api import config_for

BUDGET = 0.8
PAGE_SIZE = 1000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SampleApiProcess:
    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "local.sample_api",
                "--rows",
                str(rows),
                "--port",
                str(self.port),
                "--quiet",
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import requests

        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{self.url}/health", timeout=1).ok:
                    return
            except requests.ConnectionError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the sample API did not start")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def source_config(url: str) -> dict[str, Any]:
    # next_link pagination; `size_param` sends page_size on the first request, the links carry it on.
    return config_for(url, "next_link", schema="bench", page_size=PAGE_SIZE)


def _count(path: Path, table: str) -> int:
    import duckdb

    with duckdb.connect(str(path), read_only=True) as db:
        row = db.execute(f"SELECT count(DISTINCT id) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def sluice_sync(api: SampleApiProcess, work: Path, profile: cProfile.Profile | None = None) -> float:
    """Seconds for one full sync through SyncEngine into a fresh DuckDB file."""
    from sluice.config_secrets import secret_box
    from sluice.storage.store import get_store
    from sluice.sync.engine import SyncEngine
    from sluice.sync.events import SyncRequest

    file = f"sluice-{uuid.uuid4().hex[:8]}.duckdb"
    path = moto_env.duckdb_path(file)
    group_id = moto_env.duckdb_group(file, "bench_" + uuid.uuid4().hex[:8])
    connection = moto_env.rest_connection(group_id, source_config(api.url))
    engine = SyncEngine(get_store(), decrypt=secret_box().decrypt)
    request = SyncRequest(account_id=moto_env.ACCOUNT, connection_id=connection["id"])
    started = time.perf_counter()
    if profile is not None:
        profile.enable()
    result = engine.run(request, sync_id=str(uuid.uuid4()), remaining_seconds=lambda: 900.0)
    if profile is not None:
        profile.disable()
    elapsed = time.perf_counter() - started
    if result.status != "SUCCESSFUL" or result.rows_upserted != api.rows:
        raise RuntimeError(f"the Sluice sync did not land every row: {result}")
    landed = _count(path, "bench.items")
    if landed != api.rows:
        raise RuntimeError(f"Sluice landed {landed} rows, the source has {api.rows}")
    return elapsed


def bare_sync(api: SampleApiProcess, work: Path) -> float:
    """Seconds for the same pages with `requests` + DuckDB's own JSON reader, merged by primary key."""
    import duckdb
    import requests

    path = work / f"bare-{uuid.uuid4().hex[:8]}.duckdb"
    page_file = work / f"page-{uuid.uuid4().hex[:8]}.json"
    started = time.perf_counter()
    db = duckdb.connect(str(path))
    db.execute(
        "CREATE TABLE items (id BIGINT PRIMARY KEY, name VARCHAR, category VARCHAR, price DOUBLE, "
        "version BIGINT, updated_at TIMESTAMPTZ)"
    )
    merge = (
        "INSERT OR REPLACE INTO items SELECT id, name, category, price, version, updated_at "
        f"FROM (SELECT unnest(data, recursive := true) FROM read_json('{page_file}'))"
    )
    session = requests.Session()
    url: str | None = f"{api.url}/next_link/items?limit={PAGE_SIZE}"
    while url:
        reply = session.get(url, timeout=60)
        reply.raise_for_status()
        body = reply.content
        page_file.write_bytes(body)
        db.execute(merge)
        following = json.loads(body)["links"]["next"]
        url = api.url + following if following else None
    db.close()
    elapsed = time.perf_counter() - started
    page_file.unlink(missing_ok=True)
    landed = _count(path, "items")
    if landed != api.rows:
        raise RuntimeError(f"the bare loop landed {landed} rows, the source has {api.rows}")
    return elapsed


def jsonl_loop(api: SampleApiProcess, work: Path) -> float:
    """For reference only (no budget): `requests` + appending each row as a JSON line, no merge."""
    import requests

    path = work / f"bare-{uuid.uuid4().hex[:8]}.jsonl"
    started = time.perf_counter()
    session = requests.Session()
    url: str | None = f"{api.url}/next_link/items?limit={PAGE_SIZE}"
    count = 0
    with path.open("w") as lines:
        while url:
            reply = session.get(url, timeout=60)
            reply.raise_for_status()
            body = reply.json()
            for row in body["data"]:
                lines.write(json.dumps(row) + "\n")
            count += len(body["data"])
            following = body["links"]["next"]
            url = api.url + following if following else None
    elapsed = time.perf_counter() - started
    path.unlink()
    if count != api.rows:
        raise RuntimeError(f"the JSON-lines loop read {count} rows, the source has {api.rows}")
    return elapsed


def run(env: moto_env.MotoEnv, rows: int = 100_000, runs: int = 3, out=print) -> list[Figure]:
    api = SampleApiProcess(rows)
    try:
        with tempfile.TemporaryDirectory(prefix="sluice-bench-") as folder:
            work = Path(folder)
            sluice_times, bare_times = interleaved(
                runs, lambda: sluice_sync(api, work), lambda: bare_sync(api, work)
            )
            sluice_best, bare_best = rows / min(sluice_times), rows / min(bare_times)
            out(
                f"      sync {rows:,} rows, pages of {PAGE_SIZE}: Sluice {sluice_best:,.0f} rows/s best "
                f"({rows / median(sluice_times):,.0f} median), bare requests+DuckDB {bare_best:,.0f} rows/s "
                f"best ({rows / median(bare_times):,.0f} median); {runs} runs each, interleaved"
            )
            lines_best = rows / min(jsonl_loop(api, work) for _ in range(runs))
            out(
                "      for reference (no budget): requests + JSON-lines file, no merge: "
                f"{lines_best:,.0f} rows/s best; Sluice is {sluice_best / lines_best:.2f}x of it"
            )
            figure = speed_figure(
                "sync throughput Sluice / bare loop (best)", rows, sluice_times, bare_times, BUDGET
            )
            out(figure.line())
            if not figure.passed:
                out("      profile of one more Sluice sync (cProfile, top by own time):")
                profile = cProfile.Profile()
                sluice_sync(api, work, profile)
                for line in profile_lines(profile):
                    out(f"        {line}")
            return [figure]
    finally:
        api.stop()


def profile_lines(profile: cProfile.Profile, top: int = 18) -> list[str]:
    stream = io.StringIO()
    stats = pstats.Stats(profile, stream=stream)
    stats.sort_stats("tottime").print_stats(top)
    stream.write("\n")
    stats.sort_stats("cumulative").print_stats(top)
    text = stream.getvalue()
    keep = []
    for line in text.splitlines():
        if line.strip().startswith(("ncalls", "Ordered by")) or (line[:1] == " " and line.strip()):
            keep.append(line.replace(str(ROOT) + "/", "").rstrip())
    return keep
