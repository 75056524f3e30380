"""Connector SDK packages: the zip `fivetran deploy` uploads, stored encrypted in S3.

The zip's bytes go to `s3://<PACKAGES_BUCKET>/packages/<package id>/code.zip`, encrypted with the
packages' KMS key (SSE-KMS), with its SHA-256 in the object's metadata; the item in the table holds
the metadata the API returns. A sync downloads the object, checks the hash and unpacks it into a
temporary folder of its own. A package that a connection's config names cannot be deleted (409).

Wire shape (what `fivetran_connector_sdk_cli.connector_helper` reads back): `data.id`, and on GET
`connection_id` / `connection_ids` (it counts them before overwriting a shared package).
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import io
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sluice.api.caller import Caller
from sluice.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from sluice.ids import new_id
from sluice.storage.store import Store, package_key
from sluice.timestamps import format_timestamp, utc_now

MAX_PACKAGE_BYTES = 6 * 1024 * 1024  # Lambda's request payload limit; API Gateway's is 10 MB
MAX_UNPACKED_BYTES = 200 * 1024 * 1024
SHA_METADATA = "sha256"


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


def _put_object(package_id: str, data: bytes, sha256: str) -> None:
    from sluice.aws import client
    from sluice.settings import get_settings

    settings = get_settings()
    client("s3").put_object(
        Bucket=settings.packages_bucket,
        Key=object_key(package_id),
        Body=data,
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=settings.packages_key_id,
        Metadata={SHA_METADATA: sha256},
        ContentType="application/zip",
    )


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
    item = store.get_owned(package_key(package_id), caller.account_id)
    if item is None:
        raise PackageNotFound(package_id)
    return item


def create_package(caller: Caller, data: bytes, store: Store) -> dict[str, Any]:
    check_package(data)
    package_id = new_id()
    sha256 = hashlib.sha256(data).hexdigest()
    _put_object(package_id, data, sha256)  # first the bytes, then the item that points at them
    now = format_timestamp(utc_now())
    item = {
        "id": package_id,
        "account_id": caller.account_id,
        "created_at": now,
        "created_by": caller.user_id,
        "updated_at": now,
        "last_updated_by": caller.user_id,
        "file_sha256_hash": sha256,
        "size": len(data),
        "version": 1,
    }
    store.put_package(item, expected_version=None)
    return package_out(item, [])


def get_package(caller: Caller, package_id: str, store: Store) -> dict[str, Any]:
    item = _owned(caller, package_id, store)
    return package_out(item, store.connections_using_package(caller.account_id, package_id))


def list_packages(caller: Caller, cursor: str | None, limit: int, store: Store) -> dict[str, Any]:
    from sluice.storage.store import account_packages_partition

    page = store.query_page(account_packages_partition(caller.account_id), limit, cursor)
    using: dict[str, list[str]] = {}
    if page.items:
        for item in page.items:
            using[item["id"]] = store.connections_using_package(caller.account_id, item["id"])
    return {
        "items": [package_out(i, using[i["id"]]) for i in page.items],
        "next_cursor": page.next_cursor,
    }


def update_package(caller: Caller, package_id: str, data: bytes, store: Store) -> dict[str, Any]:
    item = _owned(caller, package_id, store)
    check_package(data)
    sha256 = hashlib.sha256(data).hexdigest()
    _put_object(package_id, data, sha256)
    updated = {
        **{k: v for k, v in item.items() if k not in ("pk", "sk", "gsi1pk", "gsi1sk")},
        "updated_at": format_timestamp(utc_now()),
        "last_updated_by": caller.user_id,
        "file_sha256_hash": sha256,
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
    client("s3").delete_object(Bucket=get_settings().packages_bucket, Key=object_key(package_id))


# ---- a sync's copy ---------------------------------------------------------------------------------


@dataclass
class Unpacked:
    """A package unpacked into a folder of its own; `close()` removes it."""

    folder: Path
    sha256: str

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def unpack(package_id: str) -> Unpacked:
    """Download the package, check its SHA-256 and unpack it into a new temporary folder."""
    from botocore.exceptions import ClientError

    from sluice.aws import client
    from sluice.settings import get_settings
    from sluice.sources.base import SourceError

    try:
        response = client("s3").get_object(Bucket=get_settings().packages_bucket, Key=object_key(package_id))
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("NoSuchKey", "404"):
            raise SourceError(f"Package '{package_id}' doesn't exist") from None
        raise
    data = response["Body"].read()
    sha256 = hashlib.sha256(data).hexdigest()
    if sha256 != response.get("Metadata", {}).get(SHA_METADATA):
        raise SourceError(f"Package '{package_id}' failed its integrity check (SHA-256)")
    folder = Path(tempfile.mkdtemp(prefix="sluice-package-"))
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                target = (folder / info.filename).resolve()
                if not target.is_relative_to(folder.resolve()):
                    raise SourceError(f"Package '{package_id}' has a file outside its folder")
            archive.extractall(folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return Unpacked(folder, sha256)
