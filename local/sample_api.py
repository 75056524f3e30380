"""A small, real paginated JSON API for demos, tests and benchmarks of the `rest_api` source.

    python -m local.sample_api --rows 1000 --port 8081 [--token secret]

In Python::

    with SampleApi(rows=1000, token="t0k3n") as api:
        api.url                       # http://127.0.0.1:<port>
        api.fail_next(3, status=503)  # the next 3 data requests fail
        api.update([1, 2, 3])         # rows 1-3 get a newer updated_at

Data: rows `{"id", "name", "category", "price", "version", "updated_at"}`, deterministic for a given
`rows`; `ties` consecutive rows share each `updated_at` (one second apart), so that a cursor value
often spans a page boundary. Rows are served in (updated_at, id) order, and `updated_since`
filters them with `>=`.

Endpoints (GET), one per pagination style; `limit` (or `per_page` for `page`) sets the page size,
capped at `max_page_size`:
- `/none/items`         the whole (filtered) list as the body
- `/next_link/items`    `{"data": [...], "links": {"next": "<relative URL>" | null}}` (`absolute=1`
                        makes the link absolute)
- `/link_header/items`  the list as the body, `Link: <...>; rel="next"`
- `/cursor/items`       `{"data": [...], "meta": {"next_cursor": "..." | null}}`, token in `cursor`
- `/page/items`         `{"data": [...], "page": n}`, `page` from 1
- `/offset/items`       `{"data": [...], "total": n}`, `offset` and `limit`
- `/redirect?to=<url>&status=302`, `/bytes?size=<n>[&chunked=1]`, `/headers` (echoes them), `/health`
Auth (when configured): `Authorization: Bearer <token>`, HTTP Basic, or an API key header.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import json
import socket
import ssl
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

STYLES = ("none", "next_link", "link_header", "cursor", "page", "offset")
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
_CATEGORIES = ("books", "games", "garden", "music", "tools")


def _stamp(second: int) -> str:
    return (EPOCH + timedelta(seconds=second)).strftime("%Y-%m-%dT%H:%M:%SZ")


class Dataset:
    """The rows, kept in (updated_at, id) order with each row's JSON encoded once."""

    def __init__(self, rows: int, ties: int) -> None:
        self._lock = threading.Lock()
        self._rows: dict[int, dict[str, Any]] = {}
        stamps = [_stamp(s) for s in range(rows // max(ties, 1) + 1)]
        for i in range(1, rows + 1):
            self._rows[i] = {
                "id": i,
                "name": f"Item {i}",
                "category": _CATEGORIES[i % len(_CATEGORIES)],
                "price": round(1 + (i * 37 % 10_000) / 100, 2),
                "version": 1,
                "updated_at": stamps[(i - 1) // max(ties, 1)],
            }
        self._clock = rows // max(ties, 1) + 1  # the next second a change gets
        self._rebuild()

    def _rebuild(self) -> None:
        ordered = sorted(self._rows.values(), key=lambda r: (r["updated_at"], r["id"]))
        self.keys: list[tuple[str, int]] = [(r["updated_at"], r["id"]) for r in ordered]
        self.blobs: list[bytes] = [json.dumps(r, separators=(",", ":")).encode() for r in ordered]

    def __len__(self) -> int:
        return len(self._rows)

    def row(self, row_id: int) -> dict[str, Any]:
        return dict(self._rows[row_id])

    def all_rows(self) -> list[dict[str, Any]]:
        return [dict(self._rows[k[1]]) for k in self.keys]

    def update(self, ids: Iterable[int]) -> str:
        """Change these rows; they all get one new updated_at (returned)."""
        with self._lock:
            stamp = _stamp(self._clock)
            self._clock += 1
            for row_id in ids:
                row = self._rows[row_id]
                row.update(
                    version=row["version"] + 1, name=f"Item {row_id} v{row['version'] + 1}", updated_at=stamp
                )
            self._rebuild()
            return stamp

    def add(self, count: int) -> list[int]:
        with self._lock:
            stamp = _stamp(self._clock)
            self._clock += 1
            first = max(self._rows, default=0) + 1
            new = list(range(first, first + count))
            for i in new:
                self._rows[i] = {
                    "id": i,
                    "name": f"Item {i}",
                    "category": _CATEGORIES[i % len(_CATEGORIES)],
                    "price": 1.0,
                    "version": 1,
                    "updated_at": stamp,
                }
            self._rebuild()
            return new

    def view(self, since: str | None) -> tuple[list[tuple[str, int]], list[bytes], int]:
        """A consistent snapshot and the index of the first row with updated_at >= since."""
        keys, blobs = self.keys, self.blobs  # replaced whole on change, so this pair is consistent
        start = bisect.bisect_left(keys, (since, -1)) if since else 0
        return keys, blobs, start


def _token(key: tuple[str, int]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def _untoken(token: str) -> tuple[str, int]:
    raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    return str(raw[0]), int(raw[1])


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up mid-request (size caps, refused certificates) are expected here.
        if not isinstance(sys.exc_info()[1], (ssl.SSLError, ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class SampleApi:
    """The server, started on enter (or `start()`) and stopped on exit (or `stop()`)."""

    def __init__(
        self,
        rows: int = 100,
        *,
        ties: int = 5,
        port: int = 0,
        host: str = "127.0.0.1",
        token: str | None = None,
        basic: tuple[str, str] | None = None,
        api_key: tuple[str, str] | None = None,
        max_page_size: int = 1000,
        certfile: str | None = None,
        keyfile: str | None = None,
        verbose: bool = False,
    ) -> None:
        self.data = Dataset(rows, ties)
        self.token = token
        self.basic = basic
        self.api_key = api_key
        self.max_page_size = max_page_size
        self.verbose = verbose
        # Every request's path and query, in arrival order (for tests).
        self.requests: list[str] = []
        self._failures: list[tuple[int, str | None]] = []
        self._lock = threading.Lock()
        self._server = _Server((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self.scheme = "http"
        if certfile:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(certfile, keyfile)
            # The handshake runs in the request thread, so one silent client cannot stall accept().
            self._server.socket = context.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
            self.scheme = "https"
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> SampleApi:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="sample-api", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> SampleApi:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # ---- controls ----------------------------------------------------------------------------

    def fail_next(self, count: int, *, status: int = 503, retry_after: str | int | None = None) -> None:
        """The next `count` data requests answer `status` (429s carry `Retry-After` if given)."""
        with self._lock:
            self._failures.extend([(status, None if retry_after is None else str(retry_after))] * count)

    def update(self, ids: Iterable[int]) -> str:
        return self.data.update(ids)

    def add(self, count: int) -> list[int]:
        return self.data.add(count)

    def _take_failure(self) -> tuple[int, str | None] | None:
        with self._lock:
            return self._failures.pop(0) if self._failures else None

    def _log(self, path: str) -> None:
        with self._lock:
            self.requests.append(path)

    def authorized(self, headers: Any) -> bool:
        if not (self.token or self.basic or self.api_key):
            return True
        authorization = headers.get("Authorization", "")
        if self.token and authorization == f"Bearer {self.token}":
            return True
        if self.basic:
            expected = base64.b64encode(f"{self.basic[0]}:{self.basic[1]}".encode()).decode()
            if authorization == f"Basic {expected}":
                return True
        return bool(self.api_key and headers.get(self.api_key[0]) == self.api_key[1])


def _handler_for(api: SampleApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real APIs do
        server_version = "SluiceSampleApi/1"

        def setup(self) -> None:
            super().setup()
            # Headers and body are two writes: without this, Nagle + delayed ACK add 40 ms a request.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:
            if api.verbose:
                super().log_message(format, *args)

        def do_GET(self) -> None:
            api._log(self.path)
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            segments = [s for s in parts.path.split("/") if s]
            try:
                if parts.path == "/health":
                    return self._send(200, b'{"ok":true}')
                if parts.path == "/headers":
                    return self._send(200, json.dumps(dict(self.headers.items())).encode())
                if parts.path == "/redirect":
                    return self._send(
                        int(query.get("status", "302")), b"", {"Location": query.get("to", "/")}
                    )
                if parts.path == "/bytes":
                    return self._bytes(int(query.get("size", "0")), query.get("chunked") == "1")
                if len(segments) != 2 or segments[0] not in STYLES or segments[1] != "items":
                    return self._send(404, b'{"error":"not found"}')
                if not api.authorized(self.headers):
                    return self._send(401, b'{"error":"unauthorized"}', {"WWW-Authenticate": "Bearer"})
                failure = api._take_failure()
                if failure:
                    status, retry_after = failure
                    extra = {"Retry-After": retry_after} if retry_after is not None else {}
                    return self._send(status, b'{"error":"injected failure"}', extra)
                self._items(segments[0], query)
            except (ValueError, KeyError) as exc:
                self._send(400, json.dumps({"error": f"bad request: {exc}"}).encode())

        def _items(self, style: str, query: dict[str, str]) -> None:
            since = query.get("updated_since")
            keys, blobs, start = api.data.view(since)
            size_name = "per_page" if style == "page" else "limit"
            size = min(int(query.get(size_name, "100")), api.max_page_size)
            if size < 1:
                raise ValueError(f"{size_name} must be at least 1")
            if style == "none":
                return self._send(200, b"[" + b",".join(blobs[start:]) + b"]")
            if style in ("next_link", "link_header", "cursor"):
                token = query.get("cursor" if style == "cursor" else "after")
                if token:
                    start = max(start, bisect.bisect_right(keys, _untoken(token)))
                end = min(start + size, len(keys))
                rows = b",".join(blobs[start:end])
                next_token = _token(keys[end - 1]) if end < len(keys) else None
                if style == "cursor":
                    meta = json.dumps({"next_cursor": next_token}).encode()
                    return self._send(200, b'{"data":[' + rows + b'],"meta":' + meta + b"}")
                link = None
                if next_token:
                    params = {k: v for k, v in query.items() if k != "after"} | {"after": next_token}
                    link = f"/{style}/items?{urlencode(params)}"
                if style == "link_header":
                    headers = {"Link": f'<{api.url}{link}>; rel="next"'} if link else {}
                    return self._send(200, b"[" + rows + b"]", headers)
                if link and query.get("absolute") == "1":
                    link = api.url + link
                return self._send(
                    200, b'{"data":[' + rows + b'],"links":' + json.dumps({"next": link}).encode() + b"}"
                )
            if style == "page":
                page = int(query.get("page", "1"))
                if page < 1:
                    raise ValueError("page starts at 1")
                first = start + (page - 1) * size
                rows = b",".join(blobs[first : first + size])
                return self._send(200, b'{"data":[' + rows + b'],"page":' + str(page).encode() + b"}")
            offset = int(query.get("offset", "0"))
            first = start + offset
            rows = b",".join(blobs[first : first + size])
            total = str(len(keys) - start).encode()
            self._send(200, b'{"data":[' + rows + b'],"total":' + total + b"}")

        def _bytes(self, size: int, chunked: bool) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            if not chunked:
                self.send_header("Content-Length", str(size))
                self.end_headers()
            else:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
            block = b"x" * 65536
            sent = 0
            try:
                while sent < size:
                    piece = block[: min(len(block), size - sent)]
                    if chunked:
                        self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                    else:
                        self.wfile.write(piece)
                    sent += len(piece)
                if chunked:
                    self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up (a size cap), as expected

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    return Handler


def example_config(api: SampleApi, style: str = "next_link") -> dict[str, Any]:
    """A `rest_api` connection config that syncs this server's rows incrementally."""
    auth: dict[str, Any] = {"type": "none"}
    if api.token:
        auth = {"type": "bearer", "token": api.token}
    elif api.basic:
        auth = {"type": "basic", "username": api.basic[0], "password": api.basic[1]}
    elif api.api_key:
        auth = {"type": "api_key", "header": api.api_key[0], "api_key": api.api_key[1]}
    return config_for(api.url, style, auth)


def config_for(
    url: str,
    style: str = "next_link",
    auth: dict[str, Any] | None = None,
    schema: str = "sample",
    page_size: int = 100,
) -> dict[str, Any]:
    """A `rest_api` config for a server of this kind at `url`, paginated in `style`, with `auth`."""
    pagination: dict[str, Any] = {
        "none": {"type": "none"},
        "next_link": {"type": "next_link", "next_path": "links.next", "size_param": "limit"},
        "link_header": {"type": "link_header", "size_param": "limit"},
        "cursor": {
            "type": "cursor",
            "cursor_path": "meta.next_cursor",
            "cursor_param": "cursor",
            "size_param": "limit",
        },
        "page": {"type": "page", "page_param": "page", "size_param": "per_page"},
        "offset": {"type": "offset", "offset_param": "offset", "limit_param": "limit"},
    }[style]
    return {
        "schema": schema,
        "base_url": url,
        "auth": auth or {"type": "none"},
        "page_size": page_size,
        "tables": [
            {
                "name": "items",
                "path": f"/{style}/items",
                "records_path": "" if style in ("none", "link_header") else "data",
                "primary_key": ["id"],
                "cursor_field": "updated_at",
                "cursor_param": "updated_since",
                "pagination": pagination,
            }
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--ties", type=int, default=5, help="rows sharing each updated_at")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", help="require 'Authorization: Bearer <token>'")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    api = SampleApi(rows=args.rows, ties=args.ties, port=args.port, token=args.token, verbose=not args.quiet)
    with api:
        print(f"Sample API with {args.rows} rows on {api.url} (Ctrl-C to stop)")
        print(f"  try: curl '{api.url}/next_link/items?limit=3'")
        print("  a rest_api connection config for it (the local stack allows loopback):")
        print(json.dumps(example_config(api), indent=2))
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopping", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
