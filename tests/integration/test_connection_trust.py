"""Trust that lasts: certificates and fingerprints approved through the API (Terraform's
fivetran_connector_certificates / fivetran_connector_fingerprints routes) or by setup tests run with
trust_certificates, and syncs against a real self-signed HTTPS server that pin exactly what was approved."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest

from local.sample_api import SampleApi
from tests.support.api_events import Account, call, make_connection, make_group
from tests.support.syncing import (
    duckdb_file,
    duckdb_rows,
    get_connection,
    make_group_with_duckdb,
    make_rest_connection,
    run_worker,
    sample_api_config,
    sync_event,
)
from tests.support.tls import CertFiles, self_signed
from tests.support.trust import ssh_public_key

C = "/v1/connections"
OTHER = Account("acct_other", "user_other")


def folder(parent: Path, name: str) -> Path:
    made = parent / name
    made.mkdir()
    return made


def approve(connection_id: str, cert: CertFiles, prefix: str = C, **changes: Any) -> Any:
    body = {"hash": cert.hash, "encoded_cert": cert.encoded, **changes}
    return call("approve_connection_trust", path=f"{prefix}/{connection_id}/certificates", body=body)


def certificates(connection_id: str, **kwargs: Any) -> Any:
    return call("get_connection_trust", path=f"{C}/{connection_id}/certificates", **kwargs)


# ---- the certificates routes -------------------------------------------------------------------------


def test_a_certificate_is_approved_listed_read_and_revoked(aws, tmp_path: Path) -> None:
    connection_id = make_connection(make_group())["id"]
    cert = self_signed(tmp_path)

    approved = approve(connection_id, cert)
    assert approved.status == 201, approved.body  # go-fivetran expects exactly 201
    data = approved.data
    assert data["hash"] == cert.hash
    assert data["id"] == base64.urlsafe_b64encode(cert.hash.encode()).decode().rstrip("=")
    assert data["sha256"] == cert.fingerprint.replace(":", "").lower()
    assert data["sha1"] == hashlib.sha1(cert.der).hexdigest()
    assert data["name"] == "localhost" and data["type"] == "TLS"
    assert data["public_key"].startswith("-----BEGIN PUBLIC KEY-----")
    assert data["validated_by"] == "user_example" and data["validated_date"].endswith("Z")

    listed = certificates(connection_id)
    assert listed.status == 200
    assert listed.data == {"items": [data], "next_cursor": None}
    one = call("get_connection_trust", path=f"{C}/{connection_id}/certificates/{cert.hash}")
    assert one.status == 200 and one.data == data

    again = approve(connection_id, cert)  # Terraform re-applies: the same approval, unchanged
    assert again.status == 201 and again.data == data
    assert len(certificates(connection_id).data["items"]) == 1

    revoked = call("revoke_connection_trust", path=f"{C}/{connection_id}/certificates/{cert.hash}")
    assert revoked.status == 200 and revoked.body["code"] == "Success" and "data" not in revoked.body
    assert certificates(connection_id).data["items"] == []
    gone = call("get_connection_trust", path=f"{C}/{connection_id}/certificates/{cert.hash}")
    assert gone.status == 404 and gone.body["code"] == "NotFound_Certificate"
    twice = call("revoke_connection_trust", path=f"{C}/{connection_id}/certificates/{cert.hash}")
    assert twice.status == 404


def test_approving_checks_the_hash_against_the_certificate(aws, tmp_path: Path) -> None:
    connection_id = make_connection(make_group())["id"]
    cert = self_signed(tmp_path)
    other = self_signed(folder(tmp_path, "other"))

    wrong = approve(connection_id, cert, hash=other.hash)
    assert wrong.status == 400 and wrong.body["code"] == "InvalidInput"
    assert "hash" in wrong.body["message"] and cert.hash in wrong.body["message"]
    garbage = approve(connection_id, cert, encoded_cert="not base64 at all!")
    assert garbage.status == 400 and "encoded_cert" in garbage.body["message"]
    not_a_cert = approve(connection_id, cert, encoded_cert=base64.b64encode(b"hello").decode())
    assert not_a_cert.status == 400 and "X.509" in not_a_cert.body["message"]
    missing = call(
        "approve_connection_trust", path=f"{C}/{connection_id}/certificates", body={"hash": cert.hash}
    )
    assert missing.status == 400 and "encoded_cert" in missing.body["message"]
    assert certificates(connection_id).data["items"] == []  # nothing was written


def test_a_pem_certificate_is_accepted_and_stored_as_der(aws, tmp_path: Path) -> None:
    connection_id = make_connection(make_group())["id"]
    cert = self_signed(tmp_path)
    reply = approve(connection_id, cert, encoded_cert=Path(cert.cert).read_text())
    assert reply.status == 201 and reply.data["hash"] == cert.hash


def test_certificates_page_through_a_cursor(aws, tmp_path: Path) -> None:
    connection_id = make_connection(make_group())["id"]
    made = [self_signed(folder(tmp_path, str(i))) for i in range(3)]
    for cert in made:
        assert approve(connection_id, cert).status == 201
    first = certificates(connection_id, query={"limit": "2"})
    assert [i["hash"] for i in first.data["items"]] == [c.hash for c in made[:2]]
    rest = certificates(connection_id, query={"limit": "2", "cursor": first.data["next_cursor"]})
    assert [i["hash"] for i in rest.data["items"]] == [made[2].hash] and rest.data["next_cursor"] is None
    bad = certificates(connection_id, query={"cursor": "%%%"})
    assert bad.status == 400 and bad.body["code"] == "InvalidInput"


def test_another_account_and_an_unknown_connection_get_404(aws, tmp_path: Path) -> None:
    connection_id = make_connection(make_group())["id"]
    cert = self_signed(tmp_path)
    assert approve(connection_id, cert).status == 201
    theirs = call("get_connection_trust", path=f"{C}/{connection_id}/certificates", account=OTHER)
    assert theirs.status == 404 and theirs.body["code"] == "NotFound_Connection"
    taken = call(
        "revoke_connection_trust", path=f"{C}/{connection_id}/certificates/{cert.hash}", account=OTHER
    )
    assert taken.status == 404
    assert len(certificates(connection_id).data["items"]) == 1
    aliased = approve("nope", cert, prefix="/v1/connectors")
    assert aliased.status == 404 and aliased.body["code"] == "NotFound_Connector"


# ---- the fingerprints routes -------------------------------------------------------------------------


def test_a_fingerprint_is_approved_listed_read_and_revoked(aws) -> None:
    connection_id = make_connection(make_group())["id"]
    public_key, hash_ = ssh_public_key()
    body = {"hash": hash_, "public_key": public_key}
    path = f"/v1/connectors/{connection_id}/fingerprints"  # Terraform's provider uses the alias

    approved = call("approve_connection_trust", path=path, body=body)
    assert approved.status == 201, approved.body
    assert approved.data["hash"] == hash_ and approved.data["public_key"] == public_key
    assert approved.data["validated_by"] == "user_example"
    listed = call("get_connection_trust", path=path)
    assert listed.data == {"items": [approved.data], "next_cursor": None}
    one = call("get_connection_trust", path=f"{path}/{hash_}")
    assert one.status == 200 and one.data == approved.data

    wrong = call("approve_connection_trust", path=path, body={**body, "hash": ssh_public_key()[1]})
    assert wrong.status == 400 and hash_ in wrong.body["message"]
    not_a_key = call("approve_connection_trust", path=path, body={**body, "public_key": "ssh-ed25519 AAAA"})
    assert not_a_key.status == 400 and "public_key" in not_a_key.body["message"]

    assert call("revoke_connection_trust", path=f"{path}/{hash_}").status == 200
    assert call("get_connection_trust", path=path).data["items"] == []
    assert call("get_connection_trust", path=f"{path}/{hash_}").body["code"] == "NotFound_Fingerprint"


# ---- syncs against a self-signed HTTPS source --------------------------------------------------------


@pytest.fixture
def lake(aws) -> Path:
    return duckdb_file("trust.duckdb")


def _sync(connection_id: str) -> dict[str, Any]:
    return run_worker(sync_event(connection_id))


def test_trust_certificates_on_create_approves_and_syncs_then_pin_it(aws, lake, tmp_path: Path) -> None:
    cert, changed = self_signed(folder(tmp_path, "first")), self_signed(folder(tmp_path, "second"))
    group_id = make_group_with_duckdb(lake.name)
    with SampleApi(rows=12, token="t0k3n", certfile=cert.cert, keyfile=cert.key) as api:
        port = api.port
        created = make_rest_connection(
            group_id,
            sample_api_config(api.url, token="t0k3n"),
            run_setup_tests=True,
            trust_certificates=True,
        )
        assert created["status"]["setup_state"] == "connected", created["setup_tests"]
        connection_id = created["id"]
        approved = certificates(connection_id).data["items"]
        assert [c["hash"] for c in approved] == [cert.hash]
        assert approved[0]["validated_by"] == "user_example"

        # The sync uses what was approved: today's bug was CertificateNotTrusted here.
        result = _sync(connection_id)
        assert result["status"] == "SUCCESSFUL", result
        assert len(duckdb_rows(lake)) == 12

    # The server now presents another certificate (same address): the sync refuses it and says which.
    with SampleApi(rows=12, token="t0k3n", port=port, certfile=changed.cert, keyfile=changed.key):
        refused = _sync(connection_id)
        assert refused["status"] == "FAILURE_WITH_TASK", refused
        message = refused["message"]
        assert "changed" in message and changed.hash in message
        assert f"/v1/connections/{connection_id}/certificates" in message
        assert get_connection(connection_id)["failed_at"] is not None

        # Approving the new one (as Terraform would, with the hash the failure named) lets it through.
        assert approve(connection_id, changed).status == 201
        assert _sync(connection_id)["status"] == "SUCCESSFUL"

        # Revoking it refuses it again.
        call("revoke_connection_trust", path=f"{C}/{connection_id}/certificates/{changed.hash}")
        assert _sync(connection_id)["status"] == "FAILURE_WITH_TASK"


def test_without_approval_a_self_signed_source_fails_setup_and_sync(aws, lake, tmp_path: Path) -> None:
    cert = self_signed(tmp_path)
    group_id = make_group_with_duckdb(lake.name)
    with SampleApi(rows=3, token="t", certfile=cert.cert, keyfile=cert.key) as api:
        created = make_rest_connection(group_id, sample_api_config(api.url, token="t"), run_setup_tests=True)
        connecting = next(t for t in created["setup_tests"] if t["title"] == "Connecting")
        assert connecting["status"] == "FAILED"
        assert connecting["details"]["hash"] == cert.hash  # what to approve, in the test's details
        assert connecting["details"]["encoded_cert"] == cert.encoded
        assert certificates(created["id"]).data["items"] == []
        assert _sync(created["id"])["status"] == "FAILURE_WITH_TASK"

        # Approved through the API with what the details showed: a test passes without trust_certificates.
        assert approve(created["id"], cert).status == 201
        tested = call("test_connection", path=f"{C}/{created['id']}/test", body={})
        assert tested.data["status"]["setup_state"] == "connected", tested.data["setup_tests"]
        assert _sync(created["id"])["status"] == "SUCCESSFUL"


def test_trust_certificates_on_test_approves_as_the_caller(aws, lake, tmp_path: Path) -> None:
    cert = self_signed(tmp_path)
    group_id = make_group_with_duckdb(lake.name)
    with SampleApi(rows=3, token="t", certfile=cert.cert, keyfile=cert.key) as api:
        connection_id = make_rest_connection(group_id, sample_api_config(api.url, token="t"))["id"]
        tested = call("test_connection", path=f"{C}/{connection_id}/test", body={"trust_certificates": True})
        assert tested.data["status"]["setup_state"] == "connected"
        assert [c["hash"] for c in certificates(connection_id).data["items"]] == [cert.hash]
        assert _sync(connection_id)["status"] == "SUCCESSFUL"
