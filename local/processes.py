"""Worker functions (the targets of rules and schedules: sync and setup-test workers, the tick) run in
processes of their own, as on Lambda, where each execution environment is its own sandbox.

A sync is CPU work: in the stack's process it would share one interpreter lock with moto, the HTTP
front and every API call, and a user polling `GET /v1/connections/{id}` would slow the sync they wait
for. On Lambda nothing of the kind happens, so the local stack does not do it either.

Each process serves one invocation at a time and stays warm for the next (Lambda's execution
environment); a function has at most `limit` of them at once, further invocations wait. The parent
sends `{"event", "context"}` as one JSON line on the child's stdin and reads one JSON line back on a
pipe of their own (stdout and stderr stay the console's: the functions' logs show there). A child
ends when its parent does (it watches its parent process), so a stopped stack leaves no sync behind.

    python -m local.processes <logical id> --out <fd>      (started by WorkerPool, never by hand)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
# Set to a folder: each invocation is profiled with cProfile into <folder>/<function>-<ns>.prof.
PROFILE_VARIABLE = "SLUICE_LOCAL_PROFILE"


class InvocationFailed(Exception):
    """The function raised (its traceback is in the console), or its process died."""


class _Process:
    def __init__(self, logical_id: str) -> None:
        read_fd, write_fd = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "local.processes", logical_id, "--out", str(write_fd)],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                pass_fds=(write_fd,),
                text=True,
            )
        finally:
            os.close(write_fd)
        self.replies: IO[str] = os.fdopen(read_fd, "r")

    def invoke(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        request = {
            "event": event,
            "context": {
                "function_name": context.function_name,
                "timeout_seconds": context.get_remaining_time_in_millis() / 1000,
                "aws_request_id": context.aws_request_id,
            },
        }
        try:
            self.process.stdin.write(json.dumps(request, default=str) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise InvocationFailed(f"the worker process is gone ({exc})") from None
        line = self.replies.readline()
        if not line:
            raise InvocationFailed(f"the worker process died (exit status {self.process.wait()})")
        reply: dict[str, Any] = json.loads(line)
        return reply

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.alive:
            self.process.kill()
        self.process.wait()
        self.replies.close()
        if self.process.stdin:
            self.process.stdin.close()


class WorkerPool:
    """One worker function's processes, started on first use, at most `limit` busy at once."""

    def __init__(self, logical_id: str, limit: int) -> None:
        self.logical_id = logical_id
        self._slots = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self._idle: list[_Process] = []
        self._all: list[_Process] = []
        self._stopped = False

    @contextmanager
    def _process(self) -> Iterator[_Process]:
        with self._slots:
            with self._lock:
                if self._stopped:
                    raise InvocationFailed("the stack is stopping")
                process = self._idle.pop() if self._idle else None
                if process is None:
                    process = _Process(self.logical_id)
                    self._all.append(process)
            try:
                yield process
            finally:
                with self._lock:
                    if process.alive and not self._stopped:
                        self._idle.append(process)
                    else:
                        self._all.remove(process)
                        process.stop()

    def invoke(self, event: dict[str, Any], context: Any) -> tuple[Any, int]:
        """The function's result and the DynamoDB requests the invocation sent."""
        with self._process() as process:
            reply = process.invoke(event, context)
        if not reply.get("ok"):
            raise InvocationFailed(str(reply.get("error")))
        return reply.get("result"), int(reply.get("dynamodb_requests", 0))

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            processes, self._all, self._idle = list(self._all), [], []
        for process in processes:
            process.stop()


# ---- the child -------------------------------------------------------------------------------------------


def _exit_with_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(0.5)


def _serve(logical_id: str, replies: IO[str]) -> None:
    from local.functions import handler_for
    from local.lambda_context import LocalContext
    from sluice.storage.dynamo import requests_sent

    handler = handler_for(logical_id)
    folder = os.environ.get(PROFILE_VARIABLE)
    for line in sys.stdin:
        request = json.loads(line)
        context = LocalContext(**request["context"])
        sent_before = requests_sent()
        reply: dict[str, Any]
        try:
            if folder:
                import cProfile

                profile = cProfile.Profile()
                try:
                    result = profile.runcall(handler, request["event"], context)
                finally:
                    profile.dump_stats(Path(folder) / f"{logical_id}-{time.time_ns()}.prof")
            else:
                result = handler(request["event"], context)
            reply = {"ok": True, "result": result}
        except Exception as exc:
            traceback.print_exc()
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        reply["dynamodb_requests"] = requests_sent() - sent_before
        replies.write(json.dumps(reply, default=str) + "\n")
        replies.flush()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local.processes")
    parser.add_argument("logical_id")
    parser.add_argument("--out", type=int, required=True)
    args = parser.parse_args(argv)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    shared = str(ROOT / "shared")
    if shared not in sys.path:
        sys.path.insert(0, shared)
    with os.fdopen(args.out, "w") as replies:
        _serve(args.logical_id, replies)


if __name__ == "__main__":
    main()
