"""Issue 9, item 2: a tenant can't have Sluice assume another tenant's role. Every AssumeRole for an
`s3` source or destination carries ExternalId = the tenant's own account id (set by Sluice, never by
the tenant), and the functions may assume only roles matching the TenantRoleNamePattern parameter.

moto does not enforce trust policies, so the calls are watched on the real STS client through
botocore's own event hooks: what the hook sees is what would go over the wire."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from local.sample_api import SampleApi
from local.template import Tag, load_template
from sluice.aws import client
from sluice.storage.store import get_store
from tests.support.api_events import Account, call, make_group
from tests.support.syncing import (
    make_group_with_duckdb,
    make_rest_connection,
    run_worker,
    sample_api_config,
    sync_event,
)

A = Account("acct_alice", "user_alice")
B = Account("acct_bob", "user_bob")
BUCKET = "alice-files"


@pytest.fixture
def assume_role_calls(aws: Any) -> Iterator[list[dict[str, Any]]]:
    """The parameters of every AssumeRole request Sluice's STS client sends."""
    calls: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append(dict(params))

    sts = client("sts")
    sts.meta.events.register("provide-client-params.sts.AssumeRole", record)
    yield calls
    sts.meta.events.unregister("provide-client-params.sts.AssumeRole", record)


@pytest.fixture
def role(aws: Any) -> str:
    iam = boto3.client("iam", region_name="us-east-1")
    return str(iam.create_role(RoleName="sluice-alice", AssumeRolePolicyDocument="{}")["Role"]["Arn"])


@pytest.fixture
def files(aws: Any) -> Any:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="exports/a.csv", Body=b"id,name\n1,Ada\n")
    return s3


def s3_source_body(group_id: str, role_arn: str, **config: Any) -> dict[str, Any]:
    return {
        "group_id": group_id,
        "service": "s3",
        "config": {
            "schema": "files",
            "table": "events",
            "bucket": BUCKET,
            "prefix": "exports/",
            "primary_key": ["id"],
            "role_arn": role_arn,
            **config,
        },
    }


def test_an_s3_source_assumes_its_role_with_the_tenants_account_id(
    assume_role_calls: list[dict[str, Any]], role: str, files: Any
) -> None:
    group_id = make_group(account=A)

    reply = call("create_connection", body=s3_source_body(group_id, role), account=A)

    assert reply.status == 201, reply.body
    assert reply.data["status"]["setup_state"] == "connected", reply.data["setup_tests"]
    assert reply.data["config"]["external_id"] == A.account_id  # what the user's trust policy requires
    assert [(c["RoleArn"], c["ExternalId"]) for c in assume_role_calls] == [(role, A.account_id)]


def test_the_sync_worker_sends_the_same_external_id(
    assume_role_calls: list[dict[str, Any]], role: str, files: Any
) -> None:
    body = {**s3_source_body(make_group_with_duckdb(account=A), role), "run_setup_tests": False}
    created = call("create_connection", body=body, account=A).data
    event = sync_event(created["id"])
    event["detail"]["account_id"] = A.account_id

    assert run_worker(event)["status"] == "SUCCESSFUL"
    assert [c["ExternalId"] for c in assume_role_calls] == [A.account_id]


@pytest.mark.parametrize("external_id", ["acct_alice", "someone_else"])
def test_a_tenant_cannot_choose_the_external_id(
    assume_role_calls: list[dict[str, Any]], role: str, files: Any, external_id: str
) -> None:
    """Bob names Alice's role and her account id as external_id: refused before any AssumeRole."""
    group_id = make_group(account=B)

    reply = call("create_connection", body=s3_source_body(group_id, role, external_id=external_id), account=B)

    assert reply.status == 400, reply.body
    assert (
        reply.body["message"] == "Field 'config.external_id' is set by Sluice to your account id, 'acct_bob'"
    )
    assert assume_role_calls == []


def test_an_update_keeps_the_external_id_the_tenants(
    assume_role_calls: list[dict[str, Any]], role: str, files: Any
) -> None:
    created = call("create_connection", body=s3_source_body(make_group(account=A), role), account=A).data
    path = f"/v1/connections/{created['id']}"

    moved = call("update_connection", path=path, body={"config": {"external_id": "acct_bob"}}, account=A)
    kept = call("update_connection", path=path, body={"config": {"pattern": "\\.csv$"}}, account=A)

    assert moved.status == 400
    assert kept.status == 200 and kept.data["config"]["external_id"] == A.account_id
    assert {c["ExternalId"] for c in assume_role_calls} == {A.account_id}


def test_a_stored_role_without_external_id_is_never_assumed(
    assume_role_calls: list[dict[str, Any]], role: str, files: Any
) -> None:
    """A connection saved before Sluice set external_id fails clearly instead of assuming without one."""
    body = {**s3_source_body(make_group(account=A), role), "run_setup_tests": False}
    created = call("create_connection", body=body, account=A).data
    store = get_store()
    store.modify_connection(
        None,
        created["id"],
        lambda c: c.model_copy(update={"config": {k: v for k, v in c.config.items() if k != "external_id"}}),
    )

    tested = call("test_connection", path=f"/v1/connections/{created['id']}/test", body={}, account=A)

    assert tested.status == 200, tested.body
    first = tested.data["setup_tests"][0]
    assert first["status"] == "FAILED"
    assert "no external_id to assume its role_arn with" in first["message"]
    assert assume_role_calls == []


def test_an_s3_destination_assumes_its_role_with_the_groups_account_id(
    assume_role_calls: list[dict[str, Any]], role: str, aws: Any
) -> None:
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="alice-lake")
    group_id = make_group(account=A)
    destination = call(
        "create_destination",
        body={"group_id": group_id, "service": "s3", "config": {"bucket": "alice-lake", "role_arn": role}},
        account=A,
    )
    assert destination.status == 201, destination.body
    assert destination.data["config"]["external_id"] == A.account_id

    with SampleApi(rows=3) as api:
        created = make_rest_connection(group_id, sample_api_config(api.url), account=A)
        event = sync_event(created["id"])
        event["detail"]["account_id"] = A.account_id
        assert run_worker(event)["status"] == "SUCCESSFUL"

    assert [(c["RoleArn"], c["ExternalId"]) for c in assume_role_calls] == [(role, A.account_id)]
    listed = boto3.client("s3", region_name="us-east-1").list_objects_v2(Bucket="alice-lake")
    assert listed["KeyCount"] >= 1
    assert all(o["Key"].startswith("shop/items/") for o in listed["Contents"])


def test_an_s3_destination_refuses_another_accounts_external_id(aws: Any, role: str) -> None:
    reply = call(
        "create_destination",
        body={
            "group_id": make_group(account=B),
            "service": "s3",
            "config": {"bucket": "alice-lake", "role_arn": role, "external_id": A.account_id},
        },
        account=B,
    )
    assert reply.status == 400
    assert (
        reply.body["message"] == "Field 'config.external_id' is set by Sluice to your account id, 'acct_bob'"
    )


def _statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, resource in template["Resources"].items():
        for policy in (resource.get("Properties") or {}).get("Policies") or []:
            if isinstance(policy, dict):
                for statement in policy.get("Statement", []):
                    yield name, statement


def test_the_functions_may_assume_only_roles_matching_the_pattern_parameter() -> None:
    template = load_template()
    assume = [(name, s) for name, s in _statements(template) if s.get("Action") == "sts:AssumeRole"]

    assert {name for name, _ in assume} >= {"SyncWorkerFunction", "CreateConnectionFunction"}
    for name, statement in assume:
        resource = statement["Resource"]
        assert isinstance(resource, Tag) and resource.name == "Sub", name
        assert resource.value == "arn:${AWS::Partition}:iam::*:role/${TenantRoleNamePattern}", name
    assert "TenantRoleNamePattern" in template["Parameters"]
