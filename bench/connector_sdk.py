"""Connector SDK sync throughput: the same connector (`bench/connectors/sdk_rows`, N upserts into one
keyed table) synced by Sluice's `connector_sdk` source through the real SyncEngine into DuckDB,
against the SDK's own local runner, `fivetran debug`, which writes DuckDB too.

Sluice: the package uploaded through the create_package handler, a connector_sdk connection created
        through the API, then SyncEngine.run (package download and unpack, the connector in its own
        process, DuckDB upserts by key, a checkpoint to DynamoDB on moto every 10,000 rows).
SDK:    `fivetran debug --configuration` in a fresh copy of the project (fresh state and
        warehouse.db), timed as a whole process, as an SDK user runs it; pipreqs (which it calls) is
        found on PATH from the SDK's virtual environment.
Each side runs interleaved; the best run of each is compared.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
import zipfile
from pathlib import Path

from bench import moto_env
from bench.common import ROOT, Figure, interleaved, median, speed_figure

BUDGET = 1.0
CONNECTOR = ROOT / "bench" / "connectors" / "sdk_rows"
SDK_VENV = ROOT / ".venv-clients" / "connector-sdk"
DEBUG_TIMEOUT = 600.0  # seconds: a bounded run


def _package() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(CONNECTOR / "connector.py", "connector.py")
    return buffer.getvalue()


def _upload(data: bytes) -> str:
    boundary = "sluice-bench-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="code.zip"\r\n'
            "Content-Type: application/zip\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    event = moto_env.api_event("create_package")
    event["body"] = base64.b64encode(body).decode()
    event["isBase64Encoded"] = True
    event["headers"] = {
        **(event.get("headers") or {}),
        "Content-Type": f"multipart/form-data; boundary={boundary}",
    }
    return str(moto_env.invoke("create_package", event)["id"])


def _count(path: Path, table: str) -> int:
    import duckdb

    with duckdb.connect(str(path), read_only=True) as db:
        row = db.execute(f"SELECT count(DISTINCT id) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def sluice_sync(package_id: str, rows: int) -> float:
    """Seconds for one full connector_sdk sync through SyncEngine into a fresh DuckDB file."""
    from sluice.config_secrets import secret_box
    from sluice.storage.store import get_store
    from sluice.sync.engine import SyncEngine
    from sluice.sync.events import SyncRequest

    file = f"sluice-{uuid.uuid4().hex[:8]}.duckdb"
    path = moto_env.duckdb_path(file)
    group_id = moto_env.duckdb_group(file, "bench_" + uuid.uuid4().hex[:8])
    body = {
        "group_id": group_id,
        "service": "connector_sdk",
        "config": {
            "schema": "bench",
            "package_id": package_id,
            "secrets_list": [{"key": "rows", "value": str(rows)}],
        },
        "run_setup_tests": False,
    }
    connection = moto_env.invoke("create_connection", moto_env.api_event("create_connection", body=body))
    engine = SyncEngine(get_store(), decrypt=secret_box().decrypt)
    request = SyncRequest(account_id=moto_env.ACCOUNT, connection_id=connection["id"])
    started = time.perf_counter()
    result = engine.run(request, sync_id=str(uuid.uuid4()), remaining_seconds=lambda: 900.0)
    elapsed = time.perf_counter() - started
    if result.status != "SUCCESSFUL" or result.rows_upserted != rows:
        raise RuntimeError(f"the Sluice sync did not land every row: {result}")
    landed = _count(path, "bench.rows")
    if landed != rows:
        raise RuntimeError(f"Sluice landed {landed} rows, the connector emits {rows}")
    return elapsed


def sdk_debug(rows: int, work: Path) -> float:
    """Seconds for one `fivetran debug` of the same connector, whole process, in a fresh project."""
    project = work / f"sdk-{uuid.uuid4().hex[:8]}"
    project.mkdir()
    shutil.copy(CONNECTOR / "connector.py", project / "connector.py")
    (project / "configuration.json").write_text(json.dumps({"rows": str(rows)}))
    home = work / "home"
    home.mkdir(exist_ok=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "PATH": f"{SDK_VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(home),
        "DO_NOT_TRACK": "1",
    }
    started = time.perf_counter()
    done = subprocess.run(
        [str(SDK_VENV / "bin" / "fivetran"), "debug", "--configuration", "configuration.json"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=DEBUG_TIMEOUT,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(
            f"fivetran debug failed ({done.returncode}): {done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    landed = _count(project / "files" / "warehouse.db", "tester.rows")
    if landed != rows:
        raise RuntimeError(f"fivetran debug landed {landed} rows, the connector emits {rows}")
    shutil.rmtree(project, ignore_errors=True)
    return elapsed


def run(env: moto_env.MotoEnv, rows: int = 100_000, runs: int = 3, out=print) -> list[Figure]:
    if not (SDK_VENV / "bin" / "fivetran").exists():
        raise RuntimeError(f"{SDK_VENV} has no fivetran CLI: `make clients` installs fivetran-connector-sdk")
    os.environ["CONNECTOR_SDK_PYTHON"] = str(SDK_VENV / "bin" / "python")
    from sluice.settings import get_settings

    get_settings.cache_clear()
    package_id = _upload(_package())
    with tempfile.TemporaryDirectory(prefix="sluice-bench-sdk-") as folder:
        work = Path(folder)
        sluice_times, sdk_times = interleaved(
            runs, lambda: sluice_sync(package_id, rows), lambda: sdk_debug(rows, work)
        )
    sluice_best, sdk_best = rows / min(sluice_times), rows / min(sdk_times)
    out(
        f"      connector_sdk sync of {rows:,} upserts: Sluice {sluice_best:,.0f} rows/s best "
        f"({rows / median(sluice_times):,.0f} median), fivetran debug {sdk_best:,.0f} rows/s best "
        f"({rows / median(sdk_times):,.0f} median); {runs} runs each, interleaved"
    )
    figure = speed_figure("connector_sdk sync Sluice / fivetran debug", rows, sluice_times, sdk_times, BUDGET)
    out(figure.line())
    return [figure]
