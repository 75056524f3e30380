"""Roles Sluice assumes for a tenant (`role_arn` of `s3` sources and destinations), and the ExternalId
that keeps one tenant from assuming another's: the tenant's Sluice account id, which Sluice sets in the
config (`external_id`) and sends with every AssumeRole. The role's trust policy must require it."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from sluice.aws import client
from sluice.errors import InvalidInput

# An IAM role ARN (any partition, any account): what `role_arn` fields accept.
ROLE_ARN_PATTERN = r"^arn:aws[a-z\-]*:iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@/\-]+$"


def assumed_role_client(service: str, role_arn: str, external_id: str, session_name: str) -> Any:
    """A client acting as a tenant's `role_arn`, assumed with `external_id`: the tenant's Sluice account
    id, which the role's trust policy must require (`sts:ExternalId`), so that no other tenant naming
    the same role can assume it. Raises botocore's ClientError when STS refuses."""
    import boto3

    from sluice.settings import get_settings

    credentials = client("sts").assume_role(
        RoleArn=role_arn, RoleSessionName=session_name, ExternalId=external_id, DurationSeconds=3600
    )["Credentials"]
    session = boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=get_settings().region,
    )
    return session.client(service)  # type: ignore[call-overload]


# A config field that Sluice sets to the tenant's account id (e.g. the STS ExternalId of a role it
# assumes): never the tenant's to choose, read back so that users can write their trust policy.
TenantAccountId = Annotated[
    str | None,
    Field(
        json_schema_extra={"set_by_sluice": "account_id"},
        description="Set by Sluice: your account id (the ExternalId your role's trust policy requires)",
    ),
]


def tenant_account_id_fields(model: type[BaseModel]) -> list[str]:
    """The top-level fields of a config model that hold the tenant's account id."""
    return [
        name
        for name, info in model.model_fields.items()
        if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("set_by_sluice")
    ]


def with_tenant_account_id(model: type[BaseModel], config: dict[str, Any], account_id: str) -> dict[str, Any]:
    """`config` with its account id fields set to `account_id`; another account's id is refused."""
    fields = tenant_account_id_fields(model)
    for name in fields:
        if config.get(name) not in (None, "", account_id):
            raise InvalidInput(f"Field 'config.{name}' is set by Sluice to your account id, '{account_id}'")
    return {**config, **dict.fromkeys(fields, account_id)}
