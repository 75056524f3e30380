"""What the OpenAPI document says about responses: every operation's statuses and the shape of each
body. The request side comes from the resolvers (pydantic models); this table is the response side,
and tests/integration/test_openapi_statuses.py drives every status listed here through the handlers,
so the document can't claim a status the server does not answer.

Statuses (API.md): create is 201, every other success 200; a bad field, missing field or bad enum is
400 InvalidInput (never 422); 401 without valid credentials; 404 NotFound_* for an unknown id; 409
Conflict where the rule says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(kind: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(kind, str):
        return {"type": [kind, "null"]}
    return {"anyOf": [kind, {"type": "null"}]}


def obj(properties: dict[str, Any], required: list[str] | None = None, extra: bool = True) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    schema["required"] = list(properties) if required is None else required
    if not extra:
        schema["additionalProperties"] = False
    return schema


STRING = {"type": "string"}
INTEGER = {"type": "integer"}
BOOLEAN = {"type": "boolean"}
ANY_OBJECT = {"type": "object", "additionalProperties": True}
TIMESTAMP = {"type": "string", "format": "date-time"}


def page_of(item: str) -> dict[str, Any]:
    return obj({"items": {"type": "array", "items": ref(item)}, "next_cursor": nullable("string")}, ["items"])


SETUP_TEST = obj(
    {
        "title": STRING,
        "status": {"enum": ["PASSED", "SKIPPED", "WARNING", "FAILED", "JOB_FAILED"]},
        "message": STRING,
        "details": {},
    },
    ["title", "status"],
)

CONNECTION = obj(
    {
        "id": STRING,
        "group_id": STRING,
        "service": STRING,
        "service_version": INTEGER,
        "schema": STRING,
        "connected_by": STRING,
        "created_at": TIMESTAMP,
        "succeeded_at": nullable(TIMESTAMP),
        "failed_at": nullable(TIMESTAMP),
        "paused": BOOLEAN,
        "pause_after_trial": BOOLEAN,
        "sync_frequency": {"enum": [1, 5, 15, 30, 60, 120, 180, 360, 480, 720, 1440]},
        "schedule_type": {"enum": ["auto", "manual"]},
        "daily_sync_time": nullable("string"),
        "schedule": nullable(ref("Schedule")),
        "resync_schedule": nullable(ref("ResyncSchedule")),  # ours: scheduled re-syncs
        "data_delay_sensitivity": {"enum": ["LOW", "NORMAL", "HIGH", "SYNC_FREQUENCY", "CUSTOM"]},
        "data_delay_threshold": INTEGER,
        "networking_method": {
            "enum": ["Directly", "SshTunnel", "ProxyAgent", "PrivateLink", "UnmanagedProxyAgent", "Unknown"]
        },
        "private_link_id": nullable("string"),
        "proxy_agent_id": nullable("string"),
        "hybrid_deployment_agent_id": nullable("string"),
        "destination_schema_names": {"enum": ["FIVETRAN_NAMING", "SOURCE_NAMING"]},
        "destination_configuration": nullable(ANY_OBJECT),
        "external_secrets_manager_id": nullable("string"),
        "source_sync_details": nullable(ANY_OBJECT),
        "config": ANY_OBJECT,
        "status": obj(
            {
                "setup_state": {"enum": ["incomplete", "connected", "broken"]},
                "sync_state": {"enum": ["scheduled", "syncing", "paused", "rescheduled"]},
                "update_state": {"enum": ["on_schedule", "delayed"]},
                "is_historical_sync": BOOLEAN,
                "rescheduled_for": nullable(TIMESTAMP),
                "schema_status": {"enum": ["blocked_on_capture", "ready"]},
                "tasks": {"type": "array", "items": ref("Alert")},
                "warnings": {"type": "array", "items": ref("Alert")},
            }
        ),
        # Present when the setup tests ran / when a connect card was asked for on create.
        "setup_tests": {"type": "array", "items": ref("SetupTest")},
        "connect_card": ref("ConnectCardLink"),
        "connect_card_config": ANY_OBJECT,
    },
    required=None,
)
CONNECTION["required"] = [
    k for k in CONNECTION["properties"] if k not in ("setup_tests", "connect_card", "connect_card_config")
]

DESTINATION_PROPERTIES = {
    "id": STRING,
    "group_id": STRING,
    "service": STRING,
    "region": STRING,
    "time_zone_offset": STRING,
    "setup_status": {"enum": ["incomplete", "connected", "broken"]},
    "config": ANY_OBJECT,
}

RESPONSE_SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": obj({"code": STRING, "message": STRING}, extra=False),
    "Action": obj({"code": {"const": "Success"}, "message": STRING}, extra=False),
    "SetupTest": SETUP_TEST,
    # Fivetran's Alert (status.tasks and status.warnings).
    "Alert": obj({"code": STRING, "message": STRING, "details": STRING}),
    # Ours: a sync's run record (history and live progress).
    "Sync": obj(
        {
            "id": STRING,
            "connection_id": STRING,
            "status": {"enum": ["RUNNING", "SUCCESSFUL", "FAILURE_WITH_TASK", "RESCHEDULED", "CANCELLED"]},
            "trigger": nullable("string"),
            "started_at": TIMESTAMP,
            "finished_at": nullable(TIMESTAMP),
            "duration_seconds": nullable("number"),
            "last_checkpoint_at": nullable(TIMESTAMP),
            "rows_upserted": INTEGER,
            "rows_deleted": INTEGER,
            "tables": {
                "type": "object",
                "additionalProperties": obj({"rows_upserted": INTEGER, "rows_deleted": INTEGER}),
            },
            "continuations": INTEGER,
            "reason": nullable("string"),
            "reason_code": nullable("string"),
        }
    ),
    "SyncPage": page_of("Sync"),
    "Connection": CONNECTION,
    "ConnectionPage": page_of("Connection"),
    "Group": obj({"id": STRING, "name": STRING, "created_at": TIMESTAMP}),
    "GroupPage": page_of("Group"),
    "Destination": obj(DESTINATION_PROPERTIES),
    "TestedDestination": obj(
        {**DESTINATION_PROPERTIES, "setup_tests": {"type": "array", "items": ref("SetupTest")}}
    ),
    "User": obj(
        {
            "id": STRING,
            "email": nullable("string"),
            "given_name": nullable("string"),
            "family_name": nullable("string"),
            "verified": BOOLEAN,
            "invited": BOOLEAN,
            "picture": nullable("string"),
            "phone": nullable("string"),
            "role": STRING,
            "active": BOOLEAN,
            "created_at": nullable(TIMESTAMP),
            "logged_in_at": nullable(TIMESTAMP),
        }
    ),
    "UserPage": page_of("User"),
    "AccountInfo": obj(
        {
            "account_id": STRING,
            "account_name": nullable("string"),
            "user_id": STRING,
            "system_key_id": nullable("string"),
        }
    ),
    "State": obj({"state": ANY_OBJECT}),
    # Fivetran's StandardConfigResponse, key by key (go-fivetran and Terraform read every one).
    "EnabledPatchSettings": obj(
        {
            "allowed": BOOLEAN,
            "reason_code": {"enum": ["SYSTEM_COLUMN", "SYSTEM_TABLE", "DELETED", "OTHER"]},
            "reason": STRING,
        },
        ["allowed"],
    ),
    "ColumnConfig": obj(
        {
            "name_in_destination": STRING,
            "enabled": BOOLEAN,
            "hashed": BOOLEAN,
            "is_primary_key": BOOLEAN,
            "enabled_patch_settings": ref("EnabledPatchSettings"),
        }
    ),
    "TableConfig": obj(
        {
            "name_in_destination": STRING,
            "enabled": BOOLEAN,
            "sync_mode": {"enum": ["SOFT_DELETE", "HISTORY", "LIVE"]},
            "enabled_patch_settings": ref("EnabledPatchSettings"),
            "supports_columns_config": BOOLEAN,
            "supports_history_mode": BOOLEAN,
            "columns": {"type": "object", "additionalProperties": ref("ColumnConfig")},
        }
    ),
    "SchemaConfigSchema": obj(
        {
            "name_in_destination": STRING,
            "enabled": BOOLEAN,
            "tables": {"type": "object", "additionalProperties": ref("TableConfig")},
        }
    ),
    "SchemaConfig": obj(
        {
            "enable_new_by_default": BOOLEAN,
            "schema_change_handling": {"enum": ["ALLOW_ALL", "ALLOW_COLUMNS", "BLOCK_ALL"]},
            "schemas": {"type": "object", "additionalProperties": ref("SchemaConfigSchema")},
        }
    ),
    "TableColumns": obj({"columns": {"type": "object", "additionalProperties": ref("ColumnConfig")}}),
    "ConnectCardLink": obj({"token": STRING, "uri": STRING}),
    "ConnectCard": obj(
        {
            "connector_id": STRING,
            "connect_card": ref("ConnectCardLink"),
            "connect_card_config": obj(
                {"redirect_uri": nullable("string"), "hide_setup_guide": BOOLEAN, "all_fields": BOOLEAN}
            ),
        }
    ),
    "ConnectorType": obj(
        {"id": STRING, "name": STRING, "type": STRING, "description": STRING, "config": ANY_OBJECT},
        ["id", "name", "type", "description"],
    ),
    "ConnectorTypePage": page_of("ConnectorType"),
    "MetadataTable": obj(
        {"id": STRING, "parent_id": STRING, "name_in_source": STRING, "name_in_destination": STRING}
    ),
    "MetadataTablePage": page_of("MetadataTable"),
    "MetadataColumn": obj(
        {
            "id": STRING,
            "parent_id": STRING,
            "name_in_source": STRING,
            "name_in_destination": STRING,
            "type_in_source": nullable("string"),
            "type_in_destination": nullable("string"),
            "is_primary_key": BOOLEAN,
            "is_foreign_key": BOOLEAN,
        }
    ),
    "MetadataColumnPage": page_of("MetadataColumn"),
    "Package": obj(
        {
            "id": STRING,
            "created_at": TIMESTAMP,
            "created_by": STRING,
            "updated_at": TIMESTAMP,
            "last_updated_by": STRING,
            "file_sha256_hash": STRING,
            "connection_id": nullable("string"),
            "connection_ids": {"type": "array", "items": STRING},
        }
    ),
    "PackagePage": page_of("Package"),
    # Fivetran's CertificateDetailsResponse and FingerprintDetailsResponse.
    "Certificate": obj(
        {
            "id": STRING,
            "hash": STRING,
            "name": STRING,
            "type": STRING,
            "sha1": STRING,
            "sha256": STRING,
            "public_key": STRING,
            "validated_by": STRING,
            "validated_date": TIMESTAMP,
        }
    ),
    "CertificatePage": page_of("Certificate"),
    "Fingerprint": obj(
        {
            "id": STRING,
            "hash": STRING,
            "public_key": STRING,
            "validated_by": STRING,
            "validated_date": TIMESTAMP,
        }
    ),
    "FingerprintPage": page_of("Fingerprint"),
    # Fivetran's ProxyAgentCreatedResponse, ProxyAgentWithCountsResponse, ProxyAgentWithUsageResponse
    # (counts left out: they would cost a read of the account's connections per agent).
    "ProxyAgentCreated": obj(
        {"agent_id": STRING, "auth_token": STRING, "client_cert": STRING, "client_private_key": STRING}
    ),
    "ProxyAgent": obj(
        {
            "id": STRING,
            "account_id": STRING,
            "registered_at": TIMESTAMP,
            "region": STRING,
            "created_by": STRING,
            "display_name": STRING,
            "version": nullable("string"),
            "status": nullable("string"),
            "proxy_url": STRING,  # ours: where the HTTP CONNECT proxy listens
        }
    ),
    "ProxyAgentPage": page_of("ProxyAgent"),
    "ProxyAgentWithUsage": {
        "allOf": [
            ref("ProxyAgent"),
            obj(
                {
                    "usage": {
                        "type": "array",
                        "items": obj({"id": STRING, "schema": nullable("string"), "service": STRING}),
                    }
                }
            ),
        ]
    },
    "GroupPublicKey": obj({"public_key": STRING}),
    "Webhook": obj(
        {
            "id": STRING,
            "type": {"enum": ["account", "group"]},
            "url": STRING,
            "events": {"type": "array", "items": STRING},
            "active": BOOLEAN,
            "secret": nullable("string"),
            "group_id": STRING,
            "created_at": TIMESTAMP,
            "created_by": STRING,
        },
        ["id", "type", "url", "events", "active", "created_at", "created_by"],
    ),
    "WebhookPage": page_of("Webhook"),
    "WebhookTest": obj({"succeed": BOOLEAN, "status": INTEGER, "message": STRING}),
    "MigrationConnection": ANY_OBJECT,
    "MigrationConnectionPage": page_of("MigrationConnection"),
}


@dataclass(frozen=True)
class Responses:
    """An operation's answers: `data` names the schema of the success envelope's `data` (None: an
    action, `{code, message}` only; "html": the hosted page), `errors` the error statuses it gives."""

    data: str | None
    errors: tuple[int, ...]
    success: int = 200


C = "/v1/connections/{connection_id}"
OPERATIONS: dict[tuple[str, str], Responses] = {
    ("POST", "/v1/groups"): Responses("Group", (400, 401), success=201),
    ("GET", "/v1/groups"): Responses("GroupPage", (400, 401)),
    ("GET", "/v1/groups/{group_id}"): Responses("Group", (401, 404)),
    ("PATCH", "/v1/groups/{group_id}"): Responses("Group", (400, 401, 404)),
    ("DELETE", "/v1/groups/{group_id}"): Responses(None, (401, 404, 409)),
    ("GET", "/v1/groups/{group_id}/public-key"): Responses("GroupPublicKey", (401, 404)),
    ("POST", "/v1/destinations"): Responses("Destination", (400, 401, 404, 409), success=201),
    ("GET", "/v1/destinations/{destination_id}"): Responses("Destination", (401, 404)),
    ("PATCH", "/v1/destinations/{destination_id}"): Responses("Destination", (400, 401, 404)),
    ("DELETE", "/v1/destinations/{destination_id}"): Responses(None, (401, 404, 409)),
    ("POST", "/v1/destinations/{destination_id}/test"): Responses("TestedDestination", (400, 401, 404)),
    ("GET", "/v1/users"): Responses("UserPage", (401,)),
    ("GET", "/v1/users/{user_id}"): Responses("User", (401, 404)),
    ("GET", "/v1/account/info"): Responses("AccountInfo", (401,)),
    ("POST", "/v1/connections"): Responses("Connection", (400, 401, 404, 409), success=201),
    ("GET", "/v1/connections"): Responses("ConnectionPage", (400, 401, 404)),
    ("GET", "/v1/groups/{group_id}/connections"): Responses("ConnectionPage", (400, 401, 404)),
    ("GET", C): Responses("Connection", (401, 404)),
    ("PATCH", C): Responses("Connection", (400, 401, 404)),
    ("DELETE", C): Responses(None, (401, 404)),
    ("POST", C + "/sync"): Responses(None, (400, 401, 404)),
    ("POST", C + "/force"): Responses(None, (401, 404)),
    ("POST", C + "/resync"): Responses(None, (400, 401, 404, 409)),
    ("POST", C + "/schemas/tables/resync"): Responses(None, (400, 401, 404)),
    ("POST", C + "/schemas/{schema}/tables/{table}/resync"): Responses(None, (400, 401, 404)),
    ("GET", C + "/state"): Responses("State", (400, 401, 404)),
    ("GET", C + "/syncs"): Responses("SyncPage", (400, 401, 404)),
    ("GET", C + "/syncs/{sync_id}"): Responses("Sync", (401, 404)),
    ("POST", C + "/syncs/{sync_id}/cancel"): Responses("Sync", (401, 404, 409)),
    ("POST", C + "/sync/cancel"): Responses("Sync", (401, 404, 409)),
    ("PATCH", C + "/state"): Responses("State", (400, 401, 404, 409)),
    ("GET", C + "/schemas"): Responses("SchemaConfig", (401, 404)),
    ("GET", C + "/schemas/{schema}/tables/{table}/columns"): Responses("TableColumns", (401, 404)),
    ("POST", C + "/schemas"): Responses("SchemaConfig", (400, 401, 404, 409)),
    ("PATCH", C + "/schemas"): Responses("SchemaConfig", (400, 401, 404)),
    ("POST", C + "/schemas/reload"): Responses("SchemaConfig", (400, 401, 404)),
    ("POST", C + "/schemas/drop-columns"): Responses(None, (400, 401, 404, 409)),
    ("PATCH", C + "/schemas/{schema}"): Responses("SchemaConfig", (400, 401, 404)),
    ("PATCH", C + "/schemas/{schema}/tables/{table}"): Responses("SchemaConfig", (400, 401, 404)),
    ("PATCH", C + "/schemas/{schema}/tables/{table}/columns/{column}"): Responses(
        "SchemaConfig", (400, 401, 404)
    ),
    ("DELETE", C + "/schemas/{schema}/tables/{table}/columns/{column}"): Responses(None, (401, 404, 409)),
    ("POST", C + "/test"): Responses("Connection", (400, 401, 404)),
    ("POST", C + "/connect-card"): Responses("ConnectCard", (400, 401, 404)),
    ("GET", C + "/certificates"): Responses("CertificatePage", (400, 401, 404)),
    ("POST", C + "/certificates"): Responses("Certificate", (400, 401, 404), success=201),
    ("GET", C + "/certificates/{hash}"): Responses("Certificate", (401, 404)),
    ("DELETE", C + "/certificates/{hash}"): Responses(None, (401, 404)),
    ("GET", C + "/fingerprints"): Responses("FingerprintPage", (400, 401, 404)),
    ("POST", C + "/fingerprints"): Responses("Fingerprint", (400, 401, 404), success=201),
    ("GET", C + "/fingerprints/{hash}"): Responses("Fingerprint", (401, 404)),
    ("DELETE", C + "/fingerprints/{hash}"): Responses(None, (401, 404)),
    ("GET", "/connect-card/setup"): Responses("html", (401,)),
    ("POST", "/connect-card/setup"): Responses("html", (401, 403, 415)),
    ("POST", "/v1/proxy"): Responses("ProxyAgentCreated", (400, 401, 409), success=201),
    ("GET", "/v1/proxy"): Responses("ProxyAgentPage", (400, 401)),
    ("GET", "/v1/proxy/{agent_id}"): Responses("ProxyAgentWithUsage", (401, 404)),
    ("DELETE", "/v1/proxy/{agent_id}"): Responses(None, (401, 404, 409)),
    ("GET", "/v1/metadata/connector-types"): Responses("ConnectorTypePage", (400, 401)),
    ("GET", "/v1/metadata/connector-types/{service}"): Responses("ConnectorType", (401, 404)),
    ("GET", "/v1/metadata/connectors/{connection_id}/tables"): Responses("MetadataTablePage", (401, 404)),
    ("GET", "/v1/metadata/connectors/{connection_id}/columns"): Responses("MetadataColumnPage", (401, 404)),
    ("POST", "/v1/connector-sdk/packages"): Responses("Package", (400, 401), success=201),
    ("GET", "/v1/connector-sdk/packages"): Responses("PackagePage", (400, 401)),
    ("GET", "/v1/connector-sdk/packages/{package_id}"): Responses("Package", (401, 404)),
    ("PATCH", "/v1/connector-sdk/packages/{package_id}"): Responses("Package", (400, 401, 404)),
    ("DELETE", "/v1/connector-sdk/packages/{package_id}"): Responses(None, (401, 404, 409)),
    ("GET", "/v1/connector-sdk/migration/connections"): Responses("MigrationConnectionPage", (400, 401)),
    ("DELETE", "/v1/api-keys/{api_key}"): Responses(None, (401, 404)),
    # Fivetran answers 200 (not 201) to a webhook's creation, and go-fivetran checks for it.
    ("POST", "/v1/webhooks/account"): Responses("Webhook", (400, 401)),
    ("POST", "/v1/webhooks/group/{group_id}"): Responses("Webhook", (400, 401, 404)),
    ("GET", "/v1/webhooks"): Responses("WebhookPage", (400, 401)),
    ("GET", "/v1/webhooks/{webhook_id}"): Responses("Webhook", (401, 404)),
    ("PATCH", "/v1/webhooks/{webhook_id}"): Responses("Webhook", (400, 401, 404)),
    ("DELETE", "/v1/webhooks/{webhook_id}"): Responses(None, (401, 404)),
    ("POST", "/v1/webhooks/{webhook_id}/test"): Responses("WebhookTest", (400, 401, 404)),
}

ERROR_DESCRIPTIONS = {
    400: "InvalidInput: a bad, missing or unknown field (the message names it)",
    401: "Unauthorized: missing or invalid credentials",
    403: "Forbidden",
    404: "NotFound_*: no such resource in this account (NotFound_Connector under /v1/connectors)",
    409: "Conflict",
    415: "UnsupportedMediaType",
}


def envelope_schema(data: str | None) -> dict[str, Any]:
    if data is None:
        return ref("Action")
    return obj({"code": {"const": "Success"}, "message": STRING, "data": ref(data)})


def responses_for(method: str, path: str) -> dict[str, Any]:
    """The OpenAPI `responses` object of one operation."""
    spec = OPERATIONS[(method, path)]
    html = spec.data == "html"
    out: dict[str, Any] = {}
    description = "Created" if spec.success == 201 else "Success"
    if html:
        out[str(spec.success)] = {"description": "The page", "content": {"text/html": {"schema": STRING}}}
    else:
        out[str(spec.success)] = {
            "description": description,
            "content": {"application/json": {"schema": envelope_schema(spec.data)}},
        }
    for status in spec.errors:
        content = (
            {"text/html": {"schema": STRING}} if html else {"application/json": {"schema": ref("Error")}}
        )
        out[str(status)] = {"description": ERROR_DESCRIPTIONS[status], "content": content}
    return out
