"""The service registry: every source service Sluice can sync from."""

from __future__ import annotations

from sluice.errors import InvalidInput
from sluice.sources import connector_sdk, postgres, rest_api, s3
from sluice.sources.base import Service

SERVICES: dict[str, Service] = {
    s.name: s for s in (rest_api.SERVICE, s3.SERVICE, postgres.SERVICE, connector_sdk.SERVICE)
}


def get_service(name: str) -> Service:
    try:
        return SERVICES[name]
    except KeyError:
        raise InvalidInput(f"Unsupported connector service '{name}'") from None
