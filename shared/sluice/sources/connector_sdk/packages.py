"""Connector SDK packages: the zip `fivetran deploy` uploads, stored encrypted in S3.

The zip's bytes go to `s3://<PACKAGES_BUCKET>/packages/<package id>/code.zip`, encrypted with the
packages' KMS key (SSE-KMS), with its SHA-256 in the object's metadata; the item in the table holds
the metadata the API returns. A top-level requirements.txt is resolved when the package is
uploaded (pip, for the Lambda runtime's Python and platform, binary wheels only) into
`dependencies.zip` beside it: a sync never runs pip, and a requirement pip cannot meet fails the
upload with pip's message. A sync downloads both, checks their hashes and unpacks them into a
temporary folder of its own. A package that a connection's config names cannot be deleted (409):
the check reads the account's connections, so a connection created in the same instant as the
delete can still lose its package (its syncs then fail with "doesn't exist").

Wire shape (what `fivetran_connector_sdk_cli.connector_helper` reads back): `data.id`, and on GET
`connection_id` / `connection_ids` (it counts them before overwriting a shared package).
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import io
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sluice.api.caller import Caller
from sluice.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from sluice.ids import new_id
from sluice.storage.store import Store
from sluice.timestamps import format_timestamp, utc_now

MAX_PACKAGE_BYTES = 6 * 1024 * 1024  # Lambda's request payload limit; API Gateway's is 10 MB
MAX_UNPACKED_BYTES = 200 * 1024 * 1024
SHA_METADATA = "sha256"
REQUIREMENTS_TIMEOUT = 20.0  # seconds; the API call has API Gateway's 29


class PackageNotFound(NotFound):
    code = "NotFound_Package"

    def __init__(self, package_id: str) -> None:
        super().__init__(f"Package with id '{package_id}' doesn't exist")


# ---- the upload ------------------------------------------------------------------------------------


def multipart_file(content_type: str | None, body: bytes, field: str = "file") -> bytes:
    """The bytes of the `file` part of a multipart/form-data body."""
    if not content_type or not content_type.lower().startswith("multipart/form-data"):
        raise InvalidInput("Expected a multipart/form-data body with a 'file' part")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise InvalidInput("Expected a multipart/form-data body with a 'file' part")
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == field:
            payload = part.get_payload(decode=True)
            return bytes(payload or b"")
    raise InvalidInput("The multipart body has no 'file' part")


def uploaded_file(event: dict[str, Any]) -> bytes:
    """The `file` part of an API Gateway event's multipart body (base64 when API Gateway encoded it)."""
    import base64
    import binascii

    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    raw = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(raw, validate=True)
        except binascii.Error:
            raise InvalidInput("The request body is not valid base64") from None
    else:
        body = raw.encode("utf-8", errors="surrogateescape")
    return multipart_file(headers.get("content-type"), body)


def check_package(data: bytes) -> None:
    """A zip with a connector.py at its top: anything else is refused before it is stored."""
    if not data:
        raise InvalidInput("The package file is empty")
    if len(data) > MAX_PACKAGE_BYTES:
        raise PayloadTooLarge(f"The package is larger than {MAX_PACKAGE_BYTES} bytes")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            unpacked = sum(i.file_size for i in archive.infolist())
    except zipfile.BadZipFile:
        raise InvalidInput("The package file is not a zip archive") from None
    if "connector.py" not in names:
        raise InvalidInput("The package has no connector.py at its top level")
    if unpacked > MAX_UNPACKED_BYTES:
        raise PayloadTooLarge(f"The package unpacks to more than {MAX_UNPACKED_BYTES} bytes")


# ---- the resource ----------------------------------------------------------------------------------


def object_key(package_id: str) -> str:
    return f"packages/{package_id}/code.zip"


def dependencies_key(package_id: str) -> str:
    """The package's requirements.txt, resolved at deploy: a zip of a pip --target folder."""
    return f"packages/{package_id}/dependencies.zip"


# The SDK installs these itself: a package's requirements.txt must not bring its own.
_PROVIDED = frozenset({"fivetran-connector-sdk", "fivetran_connector_sdk", "requests"})


def requirements(data: bytes) -> list[str]:
    """The requirement lines of the package's top-level requirements.txt (none: no file)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        if "requirements.txt" not in archive.namelist():
            return []
        text = archive.read("requirements.txt").decode("utf-8", errors="replace")
    lines = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-"):
            raise InvalidInput(f"requirements.txt may list requirements only, not options: {line!r}")
        name = re.split(r"[\s<>=!~;\[@]", line, maxsplit=1)[0]
        if name.lower().replace("_", "-") not in _PROVIDED:
            lines.append(line)
    return lines


def resolve_requirements(lines: list[str]) -> bytes | None:
    """pip installs the requirements for the Lambda runtime (python 3.13, arm64 wheels only) into a
    folder, zipped; None when there are none. A requirement pip cannot meet is refused with pip's
    own message."""
    import subprocess

    from sluice.settings import get_settings
    from sluice.sources.connector_sdk.process import interpreter

    if not lines:
        return None
    settings = get_settings()
    work = Path(tempfile.mkdtemp(prefix="sluice-requirements-"))
    try:
        (work / "requirements.txt").write_text("\n".join(lines) + "\n")
        target = work / "site"
        command = [
            interpreter(),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--target",
            str(target),
            "--only-binary=:all:",
            "--implementation",
            "cp",
            "--python-version",
            settings.connector_sdk_python_version,
            *[arg for p in settings.connector_sdk_platforms for arg in ("--platform", p)],
            "-r",
            str(work / "requirements.txt"),
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=REQUIREMENTS_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise InvalidInput("Resolving requirements.txt took too long") from None
        if done.returncode != 0:
            message = (done.stderr or done.stdout).strip().splitlines()
            raise InvalidInput("requirements.txt could not be resolved: " + " ".join(message[-3:]))
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(target.rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(target).as_posix())
        return buffer.getvalue()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _put_object(package_id: str, data: bytes, sha256: str, key: str | None = None) -> None:
    from sluice.aws import client
    from sluice.settings import get_settings

    settings = get_settings()
    client("s3").put_object(
        Bucket=settings.packages_bucket,
        Key=key or object_key(package_id),
        Body=data,
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=settings.packages_key_id,
        Metadata={SHA_METADATA: sha256},
        ContentType="application/zip",
    )


def _put_dependencies(package_id: str, dependencies: bytes | None, replacing: bool = False) -> str | None:
    """Store the resolved requirements beside the package (or remove a stale copy); their SHA-256."""
    from sluice.aws import client
    from sluice.settings import get_settings

    if dependencies is None:
        if replacing:
            client("s3").delete_object(
                Bucket=get_settings().packages_bucket, Key=dependencies_key(package_id)
            )
        return None
    sha256 = hashlib.sha256(dependencies).hexdigest()
    _put_object(package_id, dependencies, sha256, key=dependencies_key(package_id))
    return sha256


def package_out(item: dict[str, Any], connection_ids: list[str]) -> dict[str, Any]:
    return {
        "id": item["id"],
        "created_at": item["created_at"],
        "created_by": item["created_by"],
        "updated_at": item["updated_at"],
        "last_updated_by": item["last_updated_by"],
        "file_sha256_hash": item["file_sha256_hash"],
        "connection_id": connection_ids[0] if connection_ids else None,
        "connection_ids": connection_ids,
    }


def _owned(caller: Caller, package_id: str, store: Store) -> dict[str, Any]:
    item = store.get_package(caller.account_id, package_id)
    if item is None:
        raise PackageNotFound(package_id)
    return item


def create_package(caller: Caller, data: bytes, store: Store) -> dict[str, Any]:
    check_package(data)
    dependencies = resolve_requirements(requirements(data))
    package_id = new_id()
    sha256 = hashlib.sha256(data).hexdigest()
    # First the bytes, then the item that points at them.
    dependencies_sha256 = _put_dependencies(package_id, dependencies)
    _put_object(package_id, data, sha256)
    now = format_timestamp(utc_now())
    item = {
        "id": package_id,
        "account_id": caller.account_id,
        "created_at": now,
        "created_by": caller.user_id,
        "updated_at": now,
        "last_updated_by": caller.user_id,
        "file_sha256_hash": sha256,
        "dependencies_sha256": dependencies_sha256,
        "size": len(data),
        "version": 1,
    }
    store.put_package(item, expected_version=None)
    return package_out(item, [])


def get_package(caller: Caller, package_id: str, store: Store) -> dict[str, Any]:
    item = _owned(caller, package_id, store)
    return package_out(item, store.connections_using_package(caller.account_id, package_id))


def list_packages(caller: Caller, cursor: str | None, limit: int, store: Store) -> dict[str, Any]:
    page = store.list_packages(caller.account_id, cursor, limit)
    using = store.package_users(caller.account_id) if page.items else {}
    return {
        "items": [package_out(i, using.get(i["id"], [])) for i in page.items],
        "next_cursor": page.next_cursor,
    }


def update_package(caller: Caller, package_id: str, data: bytes, store: Store) -> dict[str, Any]:
    item = _owned(caller, package_id, store)
    check_package(data)
    dependencies = resolve_requirements(requirements(data))
    sha256 = hashlib.sha256(data).hexdigest()
    dependencies_sha256 = _put_dependencies(package_id, dependencies, replacing=True)
    _put_object(package_id, data, sha256)
    updated = {
        **{k: v for k, v in item.items() if k not in ("pk", "sk", "gsi1pk", "gsi1sk")},
        "updated_at": format_timestamp(utc_now()),
        "last_updated_by": caller.user_id,
        "file_sha256_hash": sha256,
        "dependencies_sha256": dependencies_sha256,
        "size": len(data),
        "version": int(item["version"]) + 1,
    }
    store.put_package(updated, expected_version=int(item["version"]))
    return package_out(updated, store.connections_using_package(caller.account_id, package_id))


def delete_package(caller: Caller, package_id: str, store: Store) -> None:
    from sluice.aws import client
    from sluice.settings import get_settings

    item = _owned(caller, package_id, store)
    using = store.connections_using_package(caller.account_id, package_id)
    if using:
        raise Conflict(f"Package '{package_id}' is used by connection(s) {', '.join(using)}")
    store.delete_package(caller.account_id, package_id, int(item["version"]))
    for key in (object_key(package_id), dependencies_key(package_id)):
        client("s3").delete_object(Bucket=get_settings().packages_bucket, Key=key)


# ---- a sync's copy ---------------------------------------------------------------------------------


@dataclass
class Unpacked:
    """A package unpacked into a folder of its own, its resolved requirements (if any) in
    `dependencies`; `close()` removes both."""

    folder: Path
    sha256: str
    dependencies: Path | None = None

    def close(self) -> None:
        shutil.rmtree(self.folder.parent, ignore_errors=True)


def _download(package_id: str, key: str, required: bool) -> bytes | None:
    """An object's bytes after its SHA-256 check; None for a missing object that is not required."""
    from botocore.exceptions import ClientError

    from sluice.aws import client
    from sluice.settings import get_settings
    from sluice.sources.base import SourceError

    try:
        response = client("s3").get_object(Bucket=get_settings().packages_bucket, Key=key)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("NoSuchKey", "404"):
            if not required:
                return None
            raise SourceError(f"Package '{package_id}' doesn't exist") from None
        raise
    data: bytes = response["Body"].read()
    if hashlib.sha256(data).hexdigest() != response.get("Metadata", {}).get(SHA_METADATA):
        raise SourceError(f"Package '{package_id}' failed its integrity check (SHA-256)")
    return data


def _extract(package_id: str, data: bytes, folder: Path) -> None:
    from sluice.sources.base import SourceError

    folder.mkdir()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            if not (folder / info.filename).resolve().is_relative_to(folder.resolve()):
                raise SourceError(f"Package '{package_id}' has a file outside its folder")
        archive.extractall(folder)


def unpack(package_id: str) -> Unpacked:
    """Download the package (and its resolved requirements), check their SHA-256 and unpack them
    into a new temporary folder."""
    data = _download(package_id, object_key(package_id), required=True)
    assert data is not None
    dependencies = _download(package_id, dependencies_key(package_id), required=False)
    root = Path(tempfile.mkdtemp(prefix="sluice-package-"))
    try:
        _extract(package_id, data, root / "code")
        if dependencies is not None:
            _extract(package_id, dependencies, root / "dependencies")
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return Unpacked(
        root / "code",
        hashlib.sha256(data).hexdigest(),
        root / "dependencies" if dependencies is not None else None,
    )
