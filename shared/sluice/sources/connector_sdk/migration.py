"""GET /v1/connector-sdk/migration/connections: the account's connector_sdk connections with the
deploy settings the SDK's CLI moves into its local options file on its first deploy
(`fivetran_connector_sdk_cli.migration.extract_managed_fields` reads these fields)."""

from __future__ import annotations

from typing import Any

from sluice.api.caller import Caller
from sluice.storage.store import Store


def list_migration_connections(
    caller: Caller, cursor: str | None, limit: int, store: Store
) -> dict[str, Any]:
    connections, next_cursor = store.list_connections_of_service(
        caller.account_id, "connector_sdk", cursor, limit
    )
    group_names: dict[str, str | None] = {}
    package_users: dict[str, int] = {}
    for connection in connections:
        package_id = str(connection.config.get("package_id"))
        package_users[package_id] = package_users.get(package_id, 0) + 1
    items = []
    for connection in connections:
        if connection.group_id not in group_names:
            group = store.get_group(caller.account_id, connection.group_id)
            group_names[connection.group_id] = group["name"] if group else None
        config = connection.config
        items.append(
            {
                "id": connection.id,
                "group_id": connection.group_id,
                "group_name": group_names[connection.group_id],
                "schema": connection.schema_name,
                "python_version": config.get("python_version"),
                "destination_schema_names": connection.destination_schema_names,
                "hybrid_deployment_agent_id": connection.hybrid_deployment_agent_id,
                "proxy_host_config_key": config.get("proxy_host_config_key"),
                "networking_method": connection.networking_method,
                "proxy_agent_id": connection.proxy_agent_id,
                "package_id": config.get("package_id"),
                "package_shared": package_users[str(config.get("package_id"))] > 1,
            }
        )
    return {"items": items, "next_cursor": next_cursor}
