"""A real HTTP CONNECT proxy on loopback that records every tunnel asked of it (target and credential)
and, when given `credential`, refuses others with 407, as Squid or tinyproxy with basic auth would."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Tunnel:
    target: str  # host:port as the CONNECT line named it
    authorization: str | None
    status: int


class ConnectProxy:
    def __init__(self, credential: str | None = None) -> None:
        # The Proxy-Authorization value to accept (None: accept any, and none).
        self.credential = credential
        self.tunnels: list[Tunnel] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._serve(self.request)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ConnectProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def targets(self) -> list[str]:
        with self._lock:
            return [t.target for t in self.tunnels if t.status == 200]

    def _record(self, tunnel: Tunnel) -> None:
        with self._lock:
            self.tunnels.append(tunnel)

    def _serve(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk:
                return
            head += chunk
        request, _, rest = head.partition(b"\r\n\r\n")
        lines = request.decode("latin-1").split("\r\n")
        method, target, _ = [*lines[0].split(" "), "", ""][:3]
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        authorization = headers.get("proxy-authorization")
        if method != "CONNECT":
            self._answer(client, Tunnel(target, authorization, 405), b"405 Method Not Allowed")
            return
        if self.credential is not None and authorization != self.credential:
            self._answer(client, Tunnel(target, authorization, 407), b"407 Proxy Authentication Required")
            return
        host, _, port = target.rpartition(":")
        try:
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
        except OSError:
            self._answer(client, Tunnel(target, authorization, 502), b"502 Bad Gateway")
            return
        self._record(Tunnel(target, authorization, 200))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        if rest:
            upstream.sendall(rest)
        self._pipe(client, upstream)

    def _answer(self, client: socket.socket, tunnel: Tunnel, status: bytes) -> None:
        self._record(tunnel)
        client.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\n\r\n")

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        def copy(source: socket.socket, sink: socket.socket) -> None:
            try:
                while chunk := source.recv(65536):
                    sink.sendall(chunk)
            except OSError:
                pass
            finally:
                for end in (source, sink):
                    with contextlib.suppress(OSError):
                        end.shutdown(socket.SHUT_RDWR)

        other = threading.Thread(target=copy, args=(b, a), daemon=True)
        other.start()
        copy(a, b)
        other.join(timeout=30)
        b.close()
