"""Every route of the public API and the function that serves it. template.yaml wires the same table
(a test keeps the two equal); the fallback function uses it to tell 404 from 405."""

from __future__ import annotations

import re

# (method, path with {parameters}, function). Paths are written once, under /v1/connections; every
# /v1/connections route is also served under /v1/connectors (API Gateway and the resolver alias them).
ROUTES: tuple[tuple[str, str, str], ...] = (
    ("POST", "/v1/groups", "create_group"),
    ("GET", "/v1/groups", "list_groups"),
    ("GET", "/v1/groups/{group_id}", "get_group"),
    ("PATCH", "/v1/groups/{group_id}", "update_group"),
    ("DELETE", "/v1/groups/{group_id}", "delete_group"),
    ("GET", "/v1/groups/{group_id}/public-key", "get_group_public_key"),
    ("POST", "/v1/destinations", "create_destination"),
    ("GET", "/v1/destinations/{destination_id}", "get_destination"),
    ("PATCH", "/v1/destinations/{destination_id}", "update_destination"),
    ("DELETE", "/v1/destinations/{destination_id}", "delete_destination"),
    ("POST", "/v1/destinations/{destination_id}/test", "test_destination"),
    ("GET", "/v1/users", "get_users"),
    ("GET", "/v1/users/{user_id}", "get_users"),
    ("GET", "/v1/account/info", "get_account_info"),
    ("POST", "/v1/connections", "create_connection"),
    ("GET", "/v1/connections", "list_connections"),
    ("GET", "/v1/groups/{group_id}/connections", "list_connections"),
    ("GET", "/v1/connections/{connection_id}", "get_connection"),
    ("PATCH", "/v1/connections/{connection_id}", "update_connection"),
    ("DELETE", "/v1/connections/{connection_id}", "delete_connection"),
    ("POST", "/v1/connections/{connection_id}/sync", "sync_connection"),
    ("POST", "/v1/connections/{connection_id}/force", "sync_connection"),
    ("POST", "/v1/connections/{connection_id}/resync", "resync_connection"),
    ("POST", "/v1/connections/{connection_id}/schemas/tables/resync", "resync_connection"),
    ("POST", "/v1/connections/{connection_id}/schemas/{schema}/tables/{table}/resync", "resync_connection"),
    ("GET", "/v1/connections/{connection_id}/state", "get_connection_state"),
    ("PATCH", "/v1/connections/{connection_id}/state", "update_connection_state"),
    # Ours: sync history and live progress, and cancelling a running sync.
    ("GET", "/v1/connections/{connection_id}/syncs", "get_connection_syncs"),
    ("GET", "/v1/connections/{connection_id}/syncs/{sync_id}", "get_connection_syncs"),
    ("POST", "/v1/connections/{connection_id}/syncs/{sync_id}/cancel", "cancel_connection_sync"),
    ("POST", "/v1/connections/{connection_id}/sync/cancel", "cancel_connection_sync"),
    ("GET", "/v1/connections/{connection_id}/schemas", "get_connection_schemas"),
    (
        "GET",
        "/v1/connections/{connection_id}/schemas/{schema}/tables/{table}/columns",
        "get_connection_schemas",
    ),
    ("POST", "/v1/connections/{connection_id}/schemas", "update_connection_schemas"),
    ("PATCH", "/v1/connections/{connection_id}/schemas", "update_connection_schemas"),
    ("POST", "/v1/connections/{connection_id}/schemas/reload", "update_connection_schemas"),
    ("POST", "/v1/connections/{connection_id}/schemas/drop-columns", "update_connection_schemas"),
    ("PATCH", "/v1/connections/{connection_id}/schemas/{schema}", "update_connection_schemas"),
    ("PATCH", "/v1/connections/{connection_id}/schemas/{schema}/tables/{table}", "update_connection_schemas"),
    (
        "PATCH",
        "/v1/connections/{connection_id}/schemas/{schema}/tables/{table}/columns/{column}",
        "update_connection_schemas",
    ),
    (
        "DELETE",
        "/v1/connections/{connection_id}/schemas/{schema}/tables/{table}/columns/{column}",
        "update_connection_schemas",
    ),
    ("POST", "/v1/connections/{connection_id}/test", "test_connection"),
    # Trust: approved TLS certificates and SSH host keys (Terraform's fivetran_connector_certificates
    # and fivetran_connector_fingerprints)
    ("GET", "/v1/connections/{connection_id}/certificates", "get_connection_trust"),
    ("POST", "/v1/connections/{connection_id}/certificates", "approve_connection_trust"),
    ("GET", "/v1/connections/{connection_id}/certificates/{hash}", "get_connection_trust"),
    ("DELETE", "/v1/connections/{connection_id}/certificates/{hash}", "revoke_connection_trust"),
    ("GET", "/v1/connections/{connection_id}/fingerprints", "get_connection_trust"),
    ("POST", "/v1/connections/{connection_id}/fingerprints", "approve_connection_trust"),
    ("GET", "/v1/connections/{connection_id}/fingerprints/{hash}", "get_connection_trust"),
    ("DELETE", "/v1/connections/{connection_id}/fingerprints/{hash}", "revoke_connection_trust"),
    ("POST", "/v1/connections/{connection_id}/connect-card", "create_connect_card"),
    ("GET", "/connect-card/setup", "connect_card_page"),
    ("POST", "/connect-card/setup", "connect_card_page"),
    # Proxy agents (HTTP CONNECT proxies that ProxyAgent connections go through)
    ("POST", "/v1/proxy", "create_proxy_agent"),
    ("GET", "/v1/proxy", "list_proxy_agents"),
    ("GET", "/v1/proxy/{agent_id}", "get_proxy_agent"),
    ("DELETE", "/v1/proxy/{agent_id}", "delete_proxy_agent"),
    ("GET", "/v1/metadata/connector-types", "get_metadata"),
    ("GET", "/v1/metadata/connector-types/{service}", "get_metadata"),
    # Webhooks (Fivetran's Webhooks API)
    ("POST", "/v1/webhooks/account", "create_account_webhook"),
    ("POST", "/v1/webhooks/group/{group_id}", "create_group_webhook"),
    ("GET", "/v1/webhooks", "list_webhooks"),
    ("GET", "/v1/webhooks/{webhook_id}", "get_webhook"),
    ("PATCH", "/v1/webhooks/{webhook_id}", "update_webhook"),
    ("DELETE", "/v1/webhooks/{webhook_id}", "delete_webhook"),
    ("POST", "/v1/webhooks/{webhook_id}/test", "test_webhook"),
    # Connector SDK packages (`fivetran deploy` uploads them)
    ("POST", "/v1/connector-sdk/packages", "create_package"),
    ("GET", "/v1/connector-sdk/packages", "list_packages"),
    ("GET", "/v1/connector-sdk/packages/{package_id}", "get_package"),
    ("PATCH", "/v1/connector-sdk/packages/{package_id}", "update_package"),
    ("DELETE", "/v1/connector-sdk/packages/{package_id}", "delete_package"),
    ("GET", "/v1/connector-sdk/migration/connections", "list_sdk_migration_connections"),
    ("GET", "/v1/metadata/connectors/{connection_id}/tables", "get_connection_metadata"),
    ("GET", "/v1/metadata/connectors/{connection_id}/columns", "get_connection_metadata"),
    # Ours (Fivetran's API has no key management): revoke one of the caller's account's keys.
    ("DELETE", "/v1/api-keys/{api_key}", "revoke_api_key"),
)


def canonical_path(path: str) -> tuple[str, bool]:
    """The path with trailing slashes dropped and /connectors read as /connections, and whether it
    came in through the alias."""
    path = path.rstrip("/") or "/"
    parts = path.split("/")
    # /v1/connectors/... and /v1/groups/{id}/connectors/...
    positions = [i for i in (2, 4) if len(parts) > i and parts[i] == "connectors"]
    if positions == [4] and parts[2] != "groups":
        positions = []
    for i in positions:
        parts[i] = "connections"
    return "/".join(parts), bool(positions)


def _pattern(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", path) + "$")


_COMPILED = [(method, _pattern(path), function) for method, path, function in ROUTES]


def allowed_methods(path: str) -> list[str]:
    canonical, _ = canonical_path(path)
    return sorted({method for method, pattern, _ in _COMPILED if pattern.match(canonical)})


# Every method some route serves; any other method (TRACE, CONNECT, ...) is a 405 on every path.
SERVED_METHODS = frozenset(method for method, _, _ in ROUTES)
