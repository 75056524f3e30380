"""Helpers for Connector SDK tests: the test connectors zipped as `fivetran deploy` zips them, a
multipart upload, a connector_sdk connection, and the Python that has the SDK installed."""

from __future__ import annotations

import base64
import io
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.support.api_events import call

ROOT = Path(__file__).resolve().parents[2]
CONNECTORS = ROOT / "tests" / "connectors"
SDK_PYTHON = ROOT / ".venv-clients" / "connector-sdk" / "bin" / "python"


def sdk_python() -> Path:
    if not SDK_PYTHON.exists():
        pytest.fail(f"{SDK_PYTHON} is missing: `make clients` installs fivetran-connector-sdk")
    return SDK_PYTHON


def use_sdk_python(monkeypatch: pytest.MonkeyPatch) -> None:
    from sluice.settings import get_settings

    monkeypatch.setenv("CONNECTOR_SDK_PYTHON", str(sdk_python()))
    get_settings.cache_clear()


def zip_connector(name: str) -> bytes:
    folder = CONNECTORS / name
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def multipart(data: bytes, field: str = "file", boundary: str = "sluice-test-boundary") -> tuple[bytes, str]:
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="code.zip"\r\n'
            "Content-Type: application/zip\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def upload_headers(content_type: str) -> dict[str, str]:
    return {"Content-Type": content_type, "Authorization": "Basic ZXhhbXBsZV9rZXk6ZXhhbXBsZV9zZWNyZXQ="}


def upload(data: bytes, op: str = "create_package", **kwargs: Any) -> Any:
    body, content_type = multipart(data)
    return call(op, raw_body=base64.b64encode(body).decode(), headers=upload_headers(content_type), **kwargs)


def deploy(name: str) -> str:
    reply = upload(zip_connector(name))
    assert reply.status == 201, reply.body
    return str(reply.data["id"])


def make_sdk_connection(
    group_id: str,
    package_id: str,
    configuration: dict[str, str] | None = None,
    schema: str = "shop",
    **body: Any,
) -> dict[str, Any]:
    config = {
        "schema": schema,
        "package_id": package_id,
        "secrets_list": [{"key": k, "value": v} for k, v in (configuration or {}).items()],
    }
    reply = call(
        "create_connection",
        body={
            "group_id": group_id,
            "service": "connector_sdk",
            "config": config,
            "run_setup_tests": False,
            **body,
        },
    )
    assert reply.status == 201, reply.body
    return dict(reply.data)


def greeting_wheel(folder: Path) -> Path:
    """A pure-Python wheel, `sluice-test-greeting 1.0`, built by hand in `folder` (pip reads it with
    --find-links, offline)."""
    import hashlib

    files = {
        "sluice_test_greeting/__init__.py": b'def greet(name):\n    return f"hello, {name}"\n',
        "sluice_test_greeting-1.0.dist-info/METADATA": (
            b"Metadata-Version: 2.1\nName: sluice-test-greeting\nVersion: 1.0\n"
        ),
        "sluice_test_greeting-1.0.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: sluice-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = "".join(
        f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode().rstrip('=')},"
        f"{len(data)}\n"
        for name, data in files.items()
    )
    record += "sluice_test_greeting-1.0.dist-info/RECORD,,\n"
    path = folder / "sluice_test_greeting-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr("sluice_test_greeting-1.0.dist-info/RECORD", record)
    return path


def offline_pip(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """pip resolves requirements from the wheels in `folder` only."""
    folder.mkdir(parents=True, exist_ok=True)
    greeting_wheel(folder)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
