"""A real PostgreSQL 15 server for tests: `initdb` into a temporary folder, a free loopback port,
`wal_level=logical`, stopped at the end. No mock database.

`initdb` and the server refuse to run as root, so both run as the `postgres` user (through
`runuser` when the tests run as root) on a folder that user owns. Each test gets its own
database on the one server (`pg_database`), so tests never see each other's tables or slots.
`make postgres` installs Debian's `postgresql` where it is missing; without it these tests skip.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SUPERUSER = "sluice_admin"
SUPERUSER_PASSWORD = "admin-pw-not-secret"
_BIN_CANDIDATES = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin")


def _bin_dir() -> Path | None:
    for candidate in _BIN_CANDIDATES:
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PostgresServer:
    port: int
    data_dir: Path
    host: str = "127.0.0.1"

    def dsn(
        self, database: str = "postgres", user: str = SUPERUSER, password: str = SUPERUSER_PASSWORD
    ) -> str:
        return f"host={self.host} port={self.port} dbname={database} user={user} password={password}"

    def connect(self, database: str = "postgres", **kwargs: Any) -> Any:
        import psycopg

        return psycopg.connect(self.dsn(database, **kwargs), autocommit=True)

    def execute(self, database: str, *statements: str) -> None:
        with self.connect(database) as db:
            for statement in statements:
                db.execute(statement)  # type: ignore[arg-type]

    def create_database(self) -> str:
        name = f"db_{uuid.uuid4().hex[:12]}"
        self.execute("postgres", f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        with self.connect("postgres") as db:
            for (slot,) in db.execute(
                "SELECT slot_name FROM pg_replication_slots WHERE database = %s", [name]
            ).fetchall():
                db.execute("SELECT pg_drop_replication_slot(%s)", [slot])
            db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]

    def create_role(self, database: str, name: str, password: str, *options: str) -> None:
        extra = " ".join(options)
        self.execute(database, f"CREATE ROLE \"{name}\" LOGIN PASSWORD '{password}' {extra}")  # type: ignore[arg-type]


def _as_postgres(*command: str) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return list(command)


@contextlib.contextmanager
def postgres_server(wal_level: str = "logical") -> Iterator[PostgresServer]:
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (make postgres installs it)")
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("no 'postgres' user to run the server as (make postgres creates it)")
    root = Path(tempfile.mkdtemp(prefix="sluice-pg-"))
    data = root / "data"
    password_file = root / "pw"
    password_file.write_text(SUPERUSER_PASSWORD + "\n")
    if os.geteuid() == 0:
        for path in (root, password_file):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    port = _free_port()
    log = root / "server.log"
    try:
        subprocess.run(
            _as_postgres(
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                SUPERUSER,
                f"--pwfile={password_file}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ),
            check=True,
            capture_output=True,
        )
        options = " ".join(
            (
                "-c listen_addresses=127.0.0.1",
                f"-c port={port}",
                f"-c unix_socket_directories={root}",
                f"-c wal_level={wal_level}",
                "-c max_replication_slots=40",
                "-c max_wal_senders=10",
                "-c fsync=off",
                "-c full_page_writes=off",
                "-c max_connections=100",
            )
        )
        subprocess.run(
            _as_postgres(
                str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"
            ),
            check=True,
            capture_output=True,
        )
        yield PostgresServer(port=port, data_dir=data)
    except subprocess.CalledProcessError as exc:
        details = exc.stderr.decode(errors="replace") if exc.stderr else ""
        if log.exists():
            details += log.read_text(errors="replace")
        raise RuntimeError(f"PostgreSQL did not start: {details}") from exc
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                _as_postgres(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"),
                check=False,
                capture_output=True,
            )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture
def pg_database(pg_server: PostgresServer) -> Iterator[str]:
    """A fresh database on the session's server, dropped (with its slots) at the end of the test."""
    name = pg_server.create_database()
    yield name
    pg_server.drop_database(name)
