"""A real HTTP server on 127.0.0.1 for the security tests: records every request, answers with JSON.

`respond(request, server)` returns (status, body, extra headers); the default answers `[]`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict[str, str]


Respond = Callable[[Seen, "EchoServer"], tuple[int, Any, dict[str, str]]]


def _empty_list(_request: Seen, _server: EchoServer) -> tuple[int, Any, dict[str, str]]:
    return 200, [], {}


class EchoServer:
    def __init__(self, respond: Respond = _empty_list) -> None:
        self.respond = respond
        self.requests: list[Seen] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen = Seen(self.path, {k: v for k, v in self.headers.items()})
                server.requests.append(seen)
                status, body, headers = server.respond(seen, server)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> EchoServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()
