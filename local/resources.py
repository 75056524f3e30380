"""Creates the template's stateful resources (tables, key, bus, rules, secrets) on moto, so that the
local stack and the tests run against what template.yaml declares instead of a second copy of it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from local.template import resources

_TABLE_PROPS = ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "BillingMode")


@dataclass
class LocalResources:
    """Physical names of what was created, as the functions' environment wants them."""

    env: dict[str, str] = field(default_factory=dict)
    # Rule logical id -> (queue url, target function logical id)
    rule_queues: dict[str, tuple[str, str]] = field(default_factory=dict)
    schedules: dict[str, tuple[str, str]] = field(default_factory=dict)  # rule id -> (expression, function)
    bus_log_queue: str = ""  # a queue that receives every Sluice event (local stack only)
    tables: dict[str, str] = field(default_factory=dict)  # logical id -> table name
    secrets: dict[str, str] = field(default_factory=dict)  # logical id -> secret name


def _physical(logical_id: str, stack: str) -> str:
    return f"{stack}-{logical_id}"


def create_resources(session: Any, stack: str = "sluice", bus_log: bool = False) -> LocalResources:
    created = LocalResources()
    env = created.env
    ddb = session.client("dynamodb")
    for logical_id, resource in resources("AWS::DynamoDB::Table").items():
        props = {k: v for k, v in resource["Properties"].items() if k in _TABLE_PROPS}
        name = _physical(logical_id, stack)
        ddb.create_table(TableName=name, **props)
        ttl = resource["Properties"].get("TimeToLiveSpecification")
        if ttl:  # the template's expiry (run records), as on AWS
            ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        created.tables[logical_id] = name
        if logical_id == "Table":
            env["TABLE_NAME"] = name

    kms = session.client("kms")
    for logical_id in resources("AWS::KMS::Key"):
        key_id = kms.create_key(Description=f"{stack} {logical_id}")["KeyMetadata"]["KeyId"]
        if logical_id == "SecretsKey":
            env["KMS_KEY_ID"] = key_id
        elif logical_id == "PackagesKey":
            env["PACKAGES_KEY_ID"] = key_id

    s3 = session.client("s3")
    for logical_id in resources("AWS::S3::Bucket"):
        name = _physical(logical_id, stack).lower()
        s3.create_bucket(Bucket=name)
        if logical_id == "PackagesBucket":
            env["PACKAGES_BUCKET"] = name

    events = session.client("events")
    if resources("AWS::Events::EventBus"):
        name = f"{stack}-bus"
        events.create_event_bus(Name=name)
        env["EVENT_BUS_NAME"] = name

    secrets = session.client("secretsmanager")
    for logical_id in resources("AWS::SecretsManager::Secret"):
        name = _physical(logical_id, stack)
        secrets.create_secret(Name=name, SecretString=json.dumps({"signing_key": _random_key()}))
        created.secrets[logical_id] = name
        if logical_id == "ConnectCardSecret":
            env["CONNECT_CARD_SECRET_ID"] = name

    sqs = session.client("sqs")
    if bus_log:
        created.bus_log_queue = _queue_rule(
            sqs, events, env["EVENT_BUS_NAME"], f"{stack}-bus-log", {"source": ["sluice"]}
        )
    for function_id, resource in resources("AWS::Serverless::Function").items():
        for event_id, event in (resource["Properties"].get("Events") or {}).items():
            props = event.get("Properties", {})
            if event["Type"] == "EventBridgeRule":
                queue_url = _queue_rule(
                    sqs, events, env["EVENT_BUS_NAME"], f"{stack}-{function_id}-{event_id}", props["Pattern"]
                )
                created.rule_queues[f"{function_id}.{event_id}"] = (queue_url, function_id)
            elif event["Type"] in ("Schedule", "ScheduleV2"):
                expression = props["Schedule"] if event["Type"] == "Schedule" else props["ScheduleExpression"]
                created.schedules[f"{function_id}.{event_id}"] = (str(expression), function_id)
    return created


def _queue_rule(sqs: Any, events: Any, bus: str, name: str, pattern: dict[str, Any]) -> str:
    """A rule on the bus delivering to a new SQS queue (moto cannot invoke Lambda targets)."""
    queue_url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "local", "Arn": queue_arn}])
    return queue_url


def _random_key() -> str:
    import secrets

    return secrets.token_urlsafe(32)
