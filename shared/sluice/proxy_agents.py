"""Proxy agents (Fivetran's `/v1/proxy` resource): an HTTP CONNECT proxy in the user's network that
connections with `networking_method: ProxyAgent` send all their traffic through.

Fivetran's agent is a program that dials out to Fivetran; Sluice's is any HTTP CONNECT proxy the user
runs (Squid, tinyproxy, ...) at `proxy_url` (ours: where the proxy listens). Sluice authenticates to it
with `Proxy-Authorization: Basic base64(agent_id:auth_token)`: the `auth_token` is made here, returned
once by the create (as Fivetran returns it), stored encrypted with KMS and never returned again. The
proxy's operator configures it to accept that credential.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any
from urllib.parse import urlsplit

from sluice.api.caller import Caller
from sluice.errors import Conflict, InvalidInput, NotFound
from sluice.ids import new_id
from sluice.network_path import Proxy
from sluice.settings import get_settings
from sluice.storage.store import Store
from sluice.timestamps import format_timestamp, utc_now

# Fivetran's data processing locations (group_region / region).
REGIONS = (
    "GCP_US_EAST4", "GCP_US_WEST1", "GCP_US_CENTRAL1", "GCP_EUROPE_WEST3", "GCP_AUSTRALIA_SOUTHEAST1",
    "GCP_NORTHAMERICA_NORTHEAST1", "GCP_EUROPE_WEST2", "GCP_ASIA_SOUTHEAST1", "GCP_ASIA_SOUTHEAST2",
    "GCP_ASIA_SOUTH1", "GCP_ASIA_NORTHEAST1", "GCP_ASIA_NORTHEAST3", "GCP_ME_CENTRAL2", "AWS_US_EAST_1",
    "AWS_US_EAST_2", "AWS_US_WEST_2", "AWS_AP_NORTHEAST_1", "AWS_AP_NORTHEAST_2", "AWS_AP_SOUTHEAST_1",
    "AWS_AP_SOUTHEAST_2", "AWS_EU_CENTRAL_1", "AWS_EU_NORTH_1", "AWS_EU_WEST_1", "AWS_EU_WEST_2",
    "AWS_AP_SOUTH_1", "AWS_CA_CENTRAL_1", "AWS_US_GOV_WEST_1", "AZURE_EASTUS2", "AZURE_AUSTRALIAEAST",
    "AZURE_UKSOUTH", "AZURE_WESTEUROPE", "AZURE_CENTRALUS", "AZURE_CANADACENTRAL", "AZURE_UAENORTH",
    "AZURE_SOUTHEASTASIA", "AZURE_EASTUS", "AZURE_JAPANEAST", "AZURE_CENTRALINDIA",
    "AZURE_GERMANYWESTCENTRAL", "AZURE_WESTUS3", "AZURE_SWITZERLANDNORTH", "AZURE_KOREACENTRAL",
)  # fmt: skip
_TOKEN_FIELD = "auth_token"
_SCOPE = "proxy_agent_id"  # the KMS encryption context the token is bound to


class ProxyAgentNotFound(NotFound):
    code = "NotFound_ProxyAgent"

    def __init__(self, agent_id: str) -> None:
        super().__init__(f"Proxy agent with id '{agent_id}' doesn't exist")


def _default_region() -> str:
    return "AWS_" + get_settings().region.upper().replace("-", "_")


def _proxy_address(proxy_url: str) -> tuple[str, int]:
    """(host, port) of `http://host:port`: where the CONNECT proxy listens."""
    try:
        parts = urlsplit(proxy_url)
        port = parts.port
    except ValueError:
        raise InvalidInput("Field 'proxy_url' must be http://host:port") from None
    if parts.scheme != "http" or not parts.hostname or port is None:
        raise InvalidInput("Field 'proxy_url' must be http://host:port (an HTTP CONNECT proxy)")
    if parts.username or parts.password:
        raise InvalidInput(
            "Field 'proxy_url' must hold no credentials: Sluice authenticates with the agent id and the "
            "auth token this call returns"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InvalidInput("Field 'proxy_url' must be http://host:port, without a path")
    return parts.hostname, port


def create(
    caller: Caller, display_name: str, group_region: str | None, proxy_url: str | None, store: Store
) -> dict[str, Any]:
    """A new proxy agent; the answer (Fivetran's ProxyAgentCreatedResponse) holds its auth token, the
    only time it is ever shown."""
    from sluice.config_secrets import secret_box

    if group_region is not None and group_region not in REGIONS:
        raise InvalidInput(f"Group region '{group_region}' is not supported")
    if not proxy_url:
        raise InvalidInput(
            "Field 'proxy_url' is required: the http://host:port of the HTTP CONNECT proxy that connections "
            "using this agent go through"
        )
    host, port = _proxy_address(proxy_url)
    agent_id = new_id()
    token = secrets.token_urlsafe(32)
    sealed = secret_box().encrypt(agent_id, {_TOKEN_FIELD: token}, scope=_SCOPE)
    store.create_proxy_agent(
        {
            "type": "proxy_agent",
            "id": agent_id,
            "account_id": caller.account_id,
            "display_name": display_name,
            "region": group_region or _default_region(),
            "created_by": caller.user_id,
            "registered_at": format_timestamp(utc_now()),
            "proxy_host": host,
            "proxy_port": port,
            "secrets": sealed,
        }
    )
    # Sluice makes no client certificate: the proxy authenticates Sluice by the token.
    return {"agent_id": agent_id, "auth_token": token, "client_cert": "", "client_private_key": ""}


def _out(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": item["id"],
        "account_id": item["account_id"],
        "registered_at": item["registered_at"],
        "region": item["region"],
        "created_by": item["created_by"],
        "display_name": item["display_name"],
        "version": None,
        # Sluice does not watch the proxy; a connection's setup tests say whether it is reachable.
        "status": None,
        "proxy_url": f"http://{_bracketed(str(item['proxy_host']))}:{item['proxy_port']}",  # ours
    }


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _owned(caller: Caller, agent_id: str, store: Store) -> dict[str, Any]:
    item = store.get_proxy_agent(caller.account_id, agent_id)
    if item is None:
        raise ProxyAgentNotFound(agent_id)
    return item


def details(caller: Caller, agent_id: str, store: Store) -> dict[str, Any]:
    """Fivetran's ProxyAgentWithUsageResponse."""
    item = _owned(caller, agent_id, store)
    usage = [
        {"id": c["id"], "schema": c.get("schema"), "service": c.get("service")}
        for c in store.connections_using_proxy_agent(caller.account_id, agent_id)
    ]
    return {**_out(item), "usage": usage}


def list_page(caller: Caller, cursor: str | None, limit: int, store: Store) -> dict[str, Any]:
    page = store.list_proxy_agents(caller.account_id, cursor, limit)
    return {"items": [_out(item) for item in page.items], "next_cursor": page.next_cursor}


def delete(caller: Caller, agent_id: str, store: Store) -> None:
    item = _owned(caller, agent_id, store)
    if store.connections_using_proxy_agent(caller.account_id, agent_id):
        raise Conflict(f"Proxy agent with id '{agent_id}' has attached connections")
    store.delete_proxy_agent(item)


def check_usable(store: Store, account_id: str, agent_id: str) -> None:
    """A connection may name only a proxy agent of its own account."""
    if store.get_proxy_agent(account_id, agent_id) is None:
        raise InvalidInput(f"Field 'proxy_agent_id': proxy agent '{agent_id}' doesn't exist")


def proxy_for(store: Store, account_id: str, agent_id: str) -> Proxy:
    """The proxy a connection's traffic goes through, its token decrypted (data-plane functions only)."""
    from sluice.config_secrets import secret_box

    item = store.get_proxy_agent(account_id, agent_id)
    if item is None:
        raise ProxyAgentNotFound(agent_id)
    token = secret_box().decrypt(agent_id, dict(item["secrets"]), scope=_SCOPE)[_TOKEN_FIELD]
    credential = base64.b64encode(f"{agent_id}:{token}".encode()).decode()
    return Proxy(agent_id, str(item["proxy_host"]), int(item["proxy_port"]), f"Basic {credential}")
