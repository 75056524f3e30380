"""Package uploads over HTTP through the local stack: the bytes reach the function as API Gateway
passes a binary media type (base64, isBase64Encoded), so the stored package is byte for byte the
upload."""

from __future__ import annotations

import hashlib
import io
import zipfile

from tests.support.local_stack import LocalStackProcess


def test_a_binary_upload_is_stored_byte_for_byte(stack: LocalStackProcess) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("connector.py", "from fivetran_connector_sdk import Connector\n")
        archive.writestr("blob.bin", bytes(range(256)) * 64)  # not UTF-8
    data = buffer.getvalue()
    http = stack.session()
    created = http.post(f"{stack.url}/v1/connector-sdk/packages", files={"file": ("code.zip", data)})
    assert created.status_code == 201, created.text
    package = created.json()["data"]
    assert package["file_sha256_hash"] == hashlib.sha256(data).hexdigest()

    listed = http.get(f"{stack.url}/v1/connector-sdk/packages", params={"limit": 1000}).json()["data"]
    assert package["id"] in [p["id"] for p in listed["items"]]
    deleted = http.delete(f"{stack.url}/v1/connector-sdk/packages/{package['id']}")
    assert deleted.status_code == 200, deleted.text
