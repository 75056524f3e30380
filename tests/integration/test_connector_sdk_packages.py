"""The Connector SDK packages resource on moto: upload (multipart), list, get, replace, delete."""

from __future__ import annotations

import hashlib

import boto3

from tests.support.api_events import Account, call, make_group
from tests.support.connector_sdk import make_sdk_connection, multipart, upload, upload_headers, zip_connector


def _object(aws, package_id: str) -> dict:
    s3 = boto3.client("s3", region_name="us-east-1")
    return s3.get_object(Bucket=aws.env["PACKAGES_BUCKET"], Key=f"packages/{package_id}/code.zip")


def test_an_upload_is_stored_encrypted_with_its_sha256(aws) -> None:
    data = zip_connector("generator_style")
    reply = upload(data)
    assert reply.status == 201, reply.body
    package = reply.data
    assert reply.body["message"] == "Package created successfully"
    sha256 = hashlib.sha256(data).hexdigest()
    assert package["file_sha256_hash"] == sha256
    assert package["connection_id"] is None and package["connection_ids"] == []
    assert package["created_by"] == "user_example"
    stored = _object(aws, package["id"])
    assert stored["Body"].read() == data
    assert stored["ServerSideEncryption"] == "aws:kms"
    assert stored["SSEKMSKeyId"].endswith(aws.env["PACKAGES_KEY_ID"])
    assert stored["Metadata"]["sha256"] == sha256


def test_get_list_patch_and_delete(aws) -> None:
    first = upload(zip_connector("generator_style")).data
    second = upload(zip_connector("raises")).data
    got = call("get_package", path=f"/v1/connector-sdk/packages/{first['id']}")
    assert got.status == 200 and got.data == first

    page = call("list_packages", query={"limit": "1"})
    assert page.status == 200 and len(page.data["items"]) == 1
    rest = call("list_packages", query={"limit": "1", "cursor": page.data["next_cursor"]})
    assert {p["id"] for p in page.data["items"] + rest.data["items"]} == {first["id"], second["id"]}

    replacement = zip_connector("never_checkpoints")
    patched = upload(replacement, op="update_package", path=f"/v1/connector-sdk/packages/{first['id']}")
    assert patched.status == 200, patched.body
    assert patched.data["file_sha256_hash"] == hashlib.sha256(replacement).hexdigest()
    assert _object(aws, first["id"])["Body"].read() == replacement

    deleted = call("delete_package", path=f"/v1/connector-sdk/packages/{first['id']}")
    assert deleted.status == 200, deleted.body
    gone = call("get_package", path=f"/v1/connector-sdk/packages/{first['id']}")
    assert gone.status == 404 and gone.body["code"] == "NotFound_Package"


def test_a_package_in_use_cannot_be_deleted(aws) -> None:
    package = upload(zip_connector("generator_style")).data
    connection = make_sdk_connection(make_group(), package["id"])
    refused = call("delete_package", path=f"/v1/connector-sdk/packages/{package['id']}")
    assert refused.status == 409, refused.body
    assert connection["id"] in refused.body["message"]
    got = call("get_package", path=f"/v1/connector-sdk/packages/{package['id']}").data
    assert got["connection_id"] == connection["id"] and got["connection_ids"] == [connection["id"]]
    [listed] = call("list_packages").data["items"]
    assert listed["connection_ids"] == [connection["id"]]
    call("delete_connection", path=f"/v1/connections/{connection['id']}")
    assert call("delete_package", path=f"/v1/connector-sdk/packages/{package['id']}").status == 200


def test_another_accounts_package_is_not_found(aws) -> None:
    package = upload(zip_connector("generator_style")).data
    other = Account(account_id="acct_other", user_id="user_other")
    for op, extra in (("get_package", {}), ("delete_package", {})):
        reply = call(op, path=f"/v1/connector-sdk/packages/{package['id']}", account=other, **extra)
        assert reply.status == 404, reply.body
    assert call("list_packages", account=other).data["items"] == []


def test_bad_uploads_are_refused_with_invalid_input(aws) -> None:
    import base64

    not_a_zip, content_type = multipart(b"print('hello')")
    cases = [
        (base64.b64encode(not_a_zip).decode(), upload_headers(content_type)),
        (
            base64.b64encode(multipart(zip_connector("raises"), field="other")[0]).decode(),
            upload_headers(content_type),
        ),
        (base64.b64encode(b'{"file": 1}').decode(), upload_headers("application/json")),
    ]
    for body, headers in cases:
        reply = call("create_package", raw_body=body, headers=headers)
        assert reply.status == 400, reply.body
        assert reply.body["code"] == "InvalidInput"
    assert call("list_packages").data["items"] == []


def test_a_zip_without_connector_py_is_refused(aws) -> None:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("main.py", "pass\n")
    reply = upload(buffer.getvalue())
    assert reply.status == 400 and "connector.py" in reply.body["message"]


def test_migration_lists_connector_sdk_connections_with_their_deploy_settings(aws) -> None:
    from tests.support.api_events import make_connection

    group = make_group(name="warehouse")
    package = upload(zip_connector("generator_style")).data
    sdk = make_sdk_connection(
        group, package["id"], schema="sdk_one", destination_schema_names="SOURCE_NAMING"
    )
    make_connection(group)  # a rest_api connection: not listed
    reply = call("list_sdk_migration_connections")
    assert reply.status == 200, reply.body
    [item] = reply.data["items"]
    assert item["id"] == sdk["id"]
    assert item["group_id"] == group and item["group_name"] == "warehouse" and item["schema"] == "sdk_one"
    assert item["package_id"] == package["id"] and item["package_shared"] is False
    assert item["destination_schema_names"] == "SOURCE_NAMING"
    assert item["networking_method"] == "Directly"
