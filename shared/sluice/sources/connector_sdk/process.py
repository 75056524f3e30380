"""The parent side of `runner.py`: starts the connector's process and reads what it emits.

One process per call (schema, setup tests, or a whole sync), started with a clean environment: the
package's folder and its resolved dependencies on the path, none of Sluice's variables (no table
name, no key id, no AWS endpoint) and no AWS credentials (on Lambda the function role's credentials
are environment variables: the connector cannot act as the sync worker). The process ends when
the parent stops reading: a sync that stops at a checkpoint for a continuation, or fails, kills it.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from sluice.observability import logger

RUNNER = Path(__file__).with_name("runner.py")
# What the connector's process may see of the environment.
# PYTHONPATH: on Lambda the SDK comes from a layer, which the runtime puts on it.
_KEPT_VARIABLES = (
    "PATH",
    "PYTHONPATH",
    "LANG",
    "LC_ALL",
    "TZ",
    "HOME",
    "TMPDIR",
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
)


def interpreter() -> str:
    """The Python that runs connector code: one with `fivetran-connector-sdk` installed."""
    from sluice.settings import get_settings

    return get_settings().connector_sdk_python or sys.executable


class ConnectorProcess:
    """A running connector. Iterate it for its messages; `ack()` after a checkpoint is committed."""

    def __init__(self, request: dict[str, Any]) -> None:
        read_fd, write_fd = os.pipe()
        env = {k: os.environ[k] for k in _KEPT_VARIABLES if k in os.environ}
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["DO_NOT_TRACK"] = "1"
        try:
            self._process = subprocess.Popen(
                [interpreter(), str(RUNNER), "--out", str(write_fd)],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                pass_fds=(write_fd,),
                env=env,
                cwd=request["project"],
            )
        finally:
            os.close(write_fd)
        self._messages: IO[bytes] = os.fdopen(read_fd, "rb", buffering=1 << 16)
        self._stderr_tail: list[str] = []
        self._stderr = threading.Thread(target=self._drain_stderr, daemon=True)
        self._stderr.start()
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(request).encode() + b"\n")
        self._process.stdin.flush()

    def _drain_stderr(self) -> None:
        assert self._process.stderr is not None
        for raw in self._process.stderr:
            line = raw.decode("utf-8", errors="replace").rstrip()
            if line:
                self._stderr_tail = [*self._stderr_tail[-19:], line]
                logger.debug("connector output", extra={"line": line})

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for line in self._messages:
            yield json.loads(line)

    def ack(self) -> None:
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(b"ok\n")
            self._process.stdin.flush()
        except BrokenPipeError:
            pass

    def exit_message(self) -> str:
        """Why the process ended without saying `done` or `failed` (it crashed or was killed)."""
        code = self._process.wait()
        self._stderr.join(timeout=5)
        tail = self._stderr_tail[-1] if self._stderr_tail else ""
        return f"The connector process exited with code {code}" + (f": {tail}" if tail else "")

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        self._messages.close()
        if self._process.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self._process.stdin.close()
        self._stderr.join(timeout=5)
