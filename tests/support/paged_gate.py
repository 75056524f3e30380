"""A `rest_api` source on 127.0.0.1 whose pages each wait for the test: page n answers only once the test
calls `release(n)`, and `requested(n)` is set the moment a sync asks for it. Pages link to the next
one (`links.next`, the shape `local.sample_api.config_for` expects for `next_link`)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

HOLD_SECONDS = 300.0  # a page nobody releases answers 503 after this, so no test hangs forever


class PagedGate:
    def __init__(self, pages: int = 3, page_size: int = 10) -> None:
        self.page_size = page_size
        self.pages = pages
        self.requested = [threading.Event() for _ in range(pages)]
        self.released = [threading.Event() for _ in range(pages)]
        self.served: list[int] = []  # page numbers answered, in order
        gate = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                page = int(query.get("page", ["0"])[0])
                gate.requested[page].set()
                if not gate.released[page].wait(HOLD_SECONDS):
                    self._answer(503, {"error": "page not released"})
                    return
                gate.served.append(page)
                last = page == gate.pages - 1
                path = urlsplit(self.path).path
                body = {
                    "data": gate.rows(page),
                    "links": {"next": None if last else f"{gate.url}{path}?page={page + 1}"},
                }
                self._answer(200, body)

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def rows(self, page: int) -> list[dict[str, Any]]:
        first = page * self.page_size
        return [
            {"id": i, "name": f"Item {i}", "updated_at": f"2026-11-01T00:{i // 60:02d}:{i % 60:02d}Z"}
            for i in range(first, first + self.page_size)
        ]

    def release(self, page: int) -> None:
        self.released[page].set()

    def release_all(self) -> None:
        for event in self.released:
            event.set()

    def wait_requested(self, page: int, timeout: float = 120.0) -> None:
        assert self.requested[page].wait(timeout), f"page {page} was never asked for"

    def __enter__(self) -> PagedGate:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.release_all()
        self._server.shutdown()
        self._server.server_close()
