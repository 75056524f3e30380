"""The one place that reads the environment: every setting Sluice knows, read once."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from functools import cache


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _endpoints(value: str | None) -> tuple[tuple[str, int], ...]:
    """`host:port,[v6]:port,...` as (host, port) pairs; entries without a valid port are an error."""
    found: list[tuple[str, int]] = []
    for entry in (value or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        host, _, port = entry.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"SLUICE_OWN_ENDPOINTS: '{entry}' is not host:port")
        found.append((host.strip("[]").lower(), int(port)))
    return tuple(found)


# Never reachable, whatever an operator lists: the metadata service's range, loopback, "this network",
# multicast (and their IPv6 forms).
_NEVER_PRIVATE_LINK = tuple(
    ipaddress.ip_network(n)
    for n in ("169.254.0.0/16", "127.0.0.0/8", "0.0.0.0/8", "224.0.0.0/4", "fe80::/10", "::1/128", "ff00::/8")
)


def _private_link_cidrs(
    value: str | None,
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """`10.20.0.0/16,fd12::/48`: the private networks PrivateLink connections may reach."""
    found: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for entry in (value or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        try:
            network = ipaddress.ip_network(entry, strict=True)
        except ValueError as exc:
            raise ValueError(f"SLUICE_PRIVATE_LINK_CIDRS: '{entry}' is not a CIDR ({exc})") from None
        for never in _NEVER_PRIVATE_LINK:
            if network.version == never.version and network.overlaps(never):
                raise ValueError(
                    f"SLUICE_PRIVATE_LINK_CIDRS: '{entry}' overlaps {never}, which connections may never "
                    "reach"
                )
        found.append(network)
    return tuple(found)


@dataclass(frozen=True)
class Settings:
    table_name: str
    event_bus_name: str
    kms_key_id: str
    connect_card_secret_id: str
    region: str
    # Outbound requests to loopback addresses are refused unless this is set (local stack, tests).
    allow_loopback: bool
    # This deployment's own endpoints (host, port), e.g. the local stack's moto server and API: the
    # outbound guard refuses them even where loopback is allowed. A loopback or unspecified host
    # stands for every loopback address. SLUICE_OWN_ENDPOINTS="127.0.0.1:5000,127.0.0.1:3000".
    own_endpoints: tuple[tuple[str, int], ...]
    # Base URL of the public API, used to build Connect Card links; empty means "from the request".
    public_base_url: str
    scheduler_shards: int
    # The Connect Card results page goes on to redirect_uri by itself after this many seconds.
    connect_card_continue_after_seconds: int
    # Where relative duckdb destination paths live (the local stack sets it; empty: the working folder).
    data_dir: str
    # A sync commits a checkpoint at most this often (seconds); each commit is one DynamoDB transaction.
    sync_commit_every_seconds: float
    # Connector SDK packages: the bucket and KMS key they are stored with, and the Python that runs
    # connector code (one with fivetran-connector-sdk installed; empty: this interpreter).
    packages_bucket: str = "sluice-packages"
    packages_key_id: str = "alias/sluice-packages"
    connector_sdk_python: str = ""
    # What a package's requirements.txt is resolved for: the Lambda runtime's Python and platform.
    connector_sdk_python_version: str = "3.13"
    connector_sdk_platforms: tuple[str, ...] = ("manylinux2014_aarch64",)
    # Private networks (the operator's, set by the PrivateLinkCidrs template parameter) that connections
    # with networking_method PrivateLink may reach; every other private address stays refused.
    private_link_cidrs: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()


@cache
def get_settings() -> Settings:
    env = os.environ
    return Settings(
        table_name=env.get("TABLE_NAME", "sluice"),
        event_bus_name=env.get("EVENT_BUS_NAME", "sluice"),
        kms_key_id=env.get("KMS_KEY_ID", "alias/sluice"),
        connect_card_secret_id=env.get("CONNECT_CARD_SECRET_ID", "sluice/connect-card"),
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        allow_loopback=_flag(env.get("SLUICE_ALLOW_LOOPBACK")),
        own_endpoints=_endpoints(env.get("SLUICE_OWN_ENDPOINTS")),
        public_base_url=env.get("PUBLIC_BASE_URL", "").rstrip("/"),
        scheduler_shards=int(env.get("SCHEDULER_SHARDS", "4")),
        connect_card_continue_after_seconds=int(env.get("CONNECT_CARD_CONTINUE_AFTER_SECONDS", "3")),
        data_dir=env.get("SLUICE_DATA_DIR", ""),
        sync_commit_every_seconds=float(env.get("SYNC_COMMIT_EVERY_SECONDS", "10")),
        packages_bucket=env.get("PACKAGES_BUCKET", "sluice-packages"),
        packages_key_id=env.get("PACKAGES_KEY_ID", "alias/sluice-packages"),
        connector_sdk_python=env.get("CONNECTOR_SDK_PYTHON", ""),
        connector_sdk_python_version=env.get("CONNECTOR_SDK_PYTHON_VERSION", "3.13"),
        connector_sdk_platforms=tuple(
            env.get("CONNECTOR_SDK_PLATFORMS", "manylinux2014_aarch64").replace(",", " ").split()
        ),
        private_link_cidrs=_private_link_cidrs(env.get("SLUICE_PRIVATE_LINK_CIDRS")),
    )
