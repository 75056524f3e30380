"""A webhook receiver on 127.0.0.1 for tests: records every POST (headers and raw body), answers with
the status a test sets, and checks each signature against the secret it was given."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> dict[str, Any]:
        return dict(json.loads(self.body))

    def signed_with(self, secret: str) -> bool:
        sent = self.headers.get("x-fivetran-signature-256", "")
        expected = hmac.new(secret.encode(), self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(sent.lower(), expected)


class WebhookReceiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.status = 200
        self._arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._arrived:
                    receiver.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
                    receiver._arrived.notify_all()
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def events(self, name: str | None = None) -> list[Received]:
        with self._arrived:
            return [r for r in self.received if name is None or r.payload.get("event") == name]

    def wait_for(self, name: str, count: int = 1, timeout: float = 60) -> list[Received]:
        """The deliveries of event `name`, once there are `count` of them (by their own arrival)."""
        with self._arrived:
            self._arrived.wait_for(
                lambda: len([r for r in self.received if r.payload.get("event") == name]) >= count, timeout
            )
        return self.events(name)

    def wait_until(
        self, wanted: Callable[[Received], bool], count: int = 1, timeout: float = 60
    ) -> list[Received]:
        """The deliveries `wanted` accepts, once there are `count` of them (or the timeout passed)."""
        with self._arrived:
            self._arrived.wait_for(lambda: len([r for r in self.received if wanted(r)]) >= count, timeout)
            return [r for r in self.received if wanted(r)]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    try:
        yield receiver
    finally:
        receiver.stop()
