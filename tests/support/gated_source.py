"""A `rest_api` source on 127.0.0.1 that hangs while its gate is closed: it answers a request's headers,
then drips its body a byte at a time (so no read timeout ends it) until the gate opens; with the gate
open it serves its rows at `/next_link/items` (the shape `local.sample_api.config_for` expects)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DRIP_SECONDS = 0.5
MAX_DRIPS = 1200  # a held request ends by itself after ten minutes at most


class GatedSource:
    def __init__(self, rows: int = 3, closed: bool = True) -> None:
        stamp = "2026-11-01T00:00:00Z"
        self.rows = [{"id": i, "name": f"Item {i}", "updated_at": stamp} for i in range(rows)]
        self.opened = threading.Event()
        if not closed:
            self.opened.set()
        self.entered = threading.Event()  # set when a request is held at the closed gate
        self.held = 0
        self._stop = threading.Event()
        source = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if not source.opened.is_set():
                    source._hold(self)
                    return
                body = json.dumps({"data": source.rows, "links": {"next": None}}).encode()
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
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _hold(self, handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(MAX_DRIPS + 1))
        handler.end_headers()
        handler.close_connection = True
        self.held += 1
        self.entered.set()
        for _ in range(MAX_DRIPS):
            if self.opened.wait(DRIP_SECONDS) or self._stop.is_set():
                return  # the body stays short: the held request fails, as a dropped source would
            try:
                handler.wfile.write(b" ")
                handler.wfile.flush()
            except OSError:
                return  # the client went away

    def open(self) -> None:
        self.opened.set()

    def __enter__(self) -> GatedSource:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self.opened.set()
        self._server.shutdown()
        self._server.server_close()
