"""The schema config's cost: a rest_api sync of 50-column rows into DuckDB with 10 columns disabled and 5
hashed, against the same sync with every column enabled (DESIGN: at most 1.2x).

Source: a loopback HTTP server in this process serving pre-encoded pages (next_link pagination) of rows
with an `id` and 49 more columns (text, numbers, booleans). Both sides run the real SyncEngine on moto
into a fresh DuckDB file, interleaved; the best run of each is compared.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench import moto_env
from bench.common import Figure, median

BUDGET = 1.2
PAGE_SIZE = 1000
COLUMNS = 50
DISABLED = [f"c{i:02d}" for i in range(1, 11)]
HASHED = [f"c{i:02d}" for i in range(11, 16)]


def _row(i: int) -> dict[str, Any]:
    row: dict[str, Any] = {"id": i}
    for c in range(1, COLUMNS):
        kind = c % 3
        row[f"c{c:02d}"] = f"value {i} {c}" if kind == 0 else (i * c if kind == 1 else (i + c) % 2 == 0)
    return row


class WideSource:
    """Pages of wide rows on 127.0.0.1, encoded once before timing starts."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        pages = (rows + PAGE_SIZE - 1) // PAGE_SIZE
        self.pages: list[bytes] = []
        for p in range(pages):
            data = [_row(i) for i in range(p * PAGE_SIZE + 1, min(rows, (p + 1) * PAGE_SIZE) + 1)]
            following = f"/items?page={p + 1}" if p + 1 < pages else None
            self.pages.append(json.dumps({"data": data, "links": {"next": following}}).encode())
        source = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                page = int(self.path.partition("page=")[2] or 0)
                body = source.pages[page]
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _config(url: str) -> dict[str, Any]:
    return {
        "schema": "wide",
        "base_url": url,
        "page_size": PAGE_SIZE,
        "tables": [
            {
                "name": "items",
                "path": "/items",
                "records_path": "data",
                "primary_key": ["id"],
                "pagination": {"type": "next_link", "next_path": "links.next"},
            }
        ],
    }


def _sync(source: WideSource, configured: bool) -> float:
    from sluice.api.caller import Caller
    from sluice.config_secrets import secret_box
    from sluice.schema_config import operations
    from sluice.storage.store import get_store
    from sluice.sync.engine import SyncEngine
    from sluice.sync.events import SyncRequest

    file = f"wide-{uuid.uuid4().hex[:8]}.duckdb"
    group_id = moto_env.duckdb_group(file, "bench_" + uuid.uuid4().hex[:8])
    connection = moto_env.rest_connection(group_id, _config(source.url))
    if configured:
        columns = {c: {"enabled": False} for c in DISABLED} | {c: {"hashed": True} for c in HASHED}
        body = {"schemas": {"wide": {"tables": {"items": {"columns": columns}}}}}
        operations.precreate(Caller(moto_env.ACCOUNT, "bench"), connection["id"], body, get_store())
    engine = SyncEngine(get_store(), decrypt=secret_box().decrypt)
    request = SyncRequest(account_id=moto_env.ACCOUNT, connection_id=connection["id"])
    started = time.perf_counter()
    result = engine.run(request, sync_id=str(uuid.uuid4()), remaining_seconds=lambda: 900.0)
    elapsed = time.perf_counter() - started
    if result.status != "SUCCESSFUL" or result.rows_upserted != source.rows:
        raise RuntimeError(f"the sync did not land every row: {result}")
    _check(moto_env.duckdb_path(file), source.rows, configured)
    return elapsed


def _check(path: Any, rows: int, configured: bool) -> None:
    import duckdb

    with duckdb.connect(str(path), read_only=True) as db:
        names = [c[0] for c in db.execute("SELECT * FROM wide.items LIMIT 0").description]
        landed = db.execute("SELECT count(*) FROM wide.items").fetchone()
        hashed = db.execute(f"SELECT {HASHED[0]} FROM wide.items WHERE id = 1").fetchone()
    if not landed or landed[0] != rows:
        raise RuntimeError(f"landed {landed} rows of {rows}")
    if configured and (set(DISABLED) & set(names) or not hashed or len(str(hashed[0])) != 64):
        raise RuntimeError("the schema config was not applied")


def run(env: moto_env.MotoEnv, rows: int = 100_000, runs: int = 3, out: Any = print) -> list[Figure]:
    del env  # the moto server it started is where the stores point
    source = WideSource(rows)
    try:
        plain: list[float] = []
        configured: list[float] = []
        for _ in range(runs):  # interleaved, so that drift hits both alike
            plain.append(_sync(source, configured=False))
            configured.append(_sync(source, configured=True))
        out(
            f"      sync {rows:,} rows of {COLUMNS} columns: every column "
            f"{rows / min(plain):,.0f} rows/s best "
            f"({rows / median(plain):,.0f} median); {len(DISABLED)} disabled + {len(HASHED)} hashed "
            f"{rows / min(configured):,.0f} rows/s best ({rows / median(configured):,.0f} median); "
            f"{runs} runs each, interleaved"
        )
        figure = Figure(
            "schema config sync time / everything enabled",
            min(configured) / min(plain),
            BUDGET,
            detail=f"{min(configured):.2f} s vs {min(plain):.2f} s",
        )
        out(figure.line())
        return [figure]
    finally:
        source.stop()
