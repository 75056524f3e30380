"""Starts the local stack (`python -m local.stack`) in its own process, as a user would, for e2e and
compat tests."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]


def wait_for_sync(
    http: requests.Session,
    url: str,
    previous: str | None = None,
    timeout: float = 60,
    poll_seconds: float = 0.2,
) -> dict[str, Any]:
    """Poll a connection (`url`) as Dagster and Airflow do: until max(succeeded_at, failed_at) moves
    past `previous` and the sync is no longer running; returns the connection then."""
    deadline = time.monotonic() + timeout
    data: dict[str, Any] = {}
    while time.monotonic() < deadline:
        reply = http.get(url, timeout=60)
        reply.raise_for_status()
        data = reply.json()["data"]
        latest = max(filter(None, [data["succeeded_at"], data["failed_at"]]), default=None)
        if latest and (previous is None or latest > previous) and data["status"]["sync_state"] != "syncing":
            return data
        time.sleep(poll_seconds)
    raise AssertionError(f"no sync finished within {timeout}s: {data}")


@dataclass
class LocalStackProcess:
    url: str
    api_key: str
    api_secret: str
    group_id: str
    aws_endpoint: str
    data_dir: Path
    # The default group's DuckDB file, as the stack printed it (inside the seeded account's folder).
    default_duckdb: Path
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)

    @property
    def auth(self) -> tuple[str, str]:
        return (self.api_key, self.api_secret)

    def session(self) -> requests.Session:
        session = requests.Session()
        session.auth = self.auth
        return session

    def events(self) -> list[dict[str, Any]]:
        """The events the stack has written so far (a line still being written is not one yet)."""
        import json

        path = self.data_dir / "events.jsonl"
        text = path.read_text() if path.exists() else ""
        complete = text[: text.rfind("\n") + 1]
        return [json.loads(line) for line in complete.splitlines()]

    def wait_for_events(
        self,
        detail_type: str,
        count: int = 1,
        timeout: float = 60,
        where: Callable[[dict[str, Any]], bool] | None = None,
    ) -> list[dict[str, Any]]:
        """The events of `detail_type` (that `where` accepts), once there are `count` of them: the bus
        recorder writes them after the API has answered, so wait for the events themselves."""
        deadline = time.monotonic() + timeout
        while True:
            found = [
                e for e in self.events() if e["detail-type"] == detail_type and (where is None or where(e))
            ]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.2)

    def events_of(self, connection_id: str, detail_type: str, count: int = 1) -> list[dict[str, Any]]:
        return self.wait_for_events(
            detail_type, count, where=lambda e: e["detail"].get("connection_id") == connection_id
        )

    def new_api_key(self, account_id: str | None = None) -> tuple[str, str, str]:
        """(key, secret, account id) of a new key made with the README's command against this stack."""
        import json

        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            "AWS_ENDPOINT_URL": self.aws_endpoint,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
            "TABLE_NAME": "sluice-Table",
            "PYTHONPATH": f"{ROOT / 'shared'}:{ROOT}",
        }
        args = [
            sys.executable,
            "-m",
            "sluice.accounts.cli",
            *(["--account", account_id] if account_id else []),
        ]
        made = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True)
        printed = json.loads(made.stdout)
        return printed["api_key"], printed["api_secret"], printed["account_id"]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_local_stack(
    data_dir: Path,
    timeout: float = 90,
    *,
    api_key: str | None = None,
    api_secret: str | None = None,
    env_extra: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
) -> LocalStackProcess:
    """A stack on a free port; `api_key`/`api_secret` to keep a key across restarts of one data dir."""
    api_key = api_key or "e2e-" + secrets.token_hex(4)
    api_secret = api_secret or secrets.token_urlsafe(24)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "PORT": "0",  # the stack binds a free port and prints it: no race for a port picked here
        # Deterministic tests: the scheduler runs only when a test asks (POST /_local/tick).
        "SLUICE_LOCAL_SCHEDULES": "off",
        # The browser test reads the Connect Card results, then clicks Continue itself, however slow
        # the machine: the page must not move on by itself meanwhile.
        "CONNECT_CARD_CONTINUE_AFTER_SECONDS": "600",
        "SLUICE_API_KEY": api_key,
        "SLUICE_API_SECRET": api_secret,
        "SLUICE_DATA_DIR": str(data_dir),
        "PYTHONPATH": f"{ROOT / 'shared'}:{ROOT}",
        "PYTHONUNBUFFERED": "1",
        **(env_extra or {}),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "local.stack", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    ready = threading.Event()
    group: list[str] = []
    duckdb_file: list[str] = []
    endpoint: list[str] = []
    url: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if match := re.search(r"ready on (http://\S+)", line):
                url.append(match.group(1))
            if match := re.search(r"group:\s+(\S+)", line):
                group.append(match.group(1))
            if match := re.search(r"\(duckdb destination (.+)\)", line):
                duckdb_file.append(match.group(1))
            if match := re.search(r"AWS \(moto\):\s+(\S+)", line):
                endpoint.append(match.group(1))
            if "Ctrl-C stops it" in line:
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not ready.wait(0.2):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("local stack did not start:\n" + "".join(output))
    return LocalStackProcess(
        url=url[0],
        api_key=api_key,
        api_secret=api_secret,
        group_id=group[0],
        aws_endpoint=endpoint[0],
        data_dir=data_dir,
        default_duckdb=Path(duckdb_file[0]),
        process=process,
        output=output,
    )
