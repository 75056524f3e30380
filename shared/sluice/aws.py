"""Cached boto3 clients, created on first use so that imports stay cheap and tests can point at moto."""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def client(service: str) -> Any:
    import boto3  # deferred: keeps cold imports of API modules under budget

    from sluice.settings import get_settings

    return boto3.session.Session().client(service, region_name=get_settings().region)  # type: ignore[call-overload]


def reset_clients() -> None:
    """Forget cached clients (tests switch between moto backends)."""
    client.cache_clear()
