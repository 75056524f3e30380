"""The `rest_api` source: any paginated JSON HTTP API.

- `config`: the config model (auth, headers, tables);
- `pagination`: one class per pagination style, each knowing its first request and its next;
- `client`: requests through `sluice.outbound.GuardedSession` (public addresses only, bounded time
  and size, credentials only to base_url's origin) with retries and error mapping;
- `extract`: tables page by page, incremental state and resuming;
- `setup_tests`: the tests run before a connection is saved as connected.
"""

from __future__ import annotations

from typing import Any

from sluice.sources.base import ALL_NETWORKING_METHODS, Service, secret_destinations, secret_paths
from sluice.sources.rest_api.config import RestApiConfig, secret_values
from sluice.sources.rest_api.extract import columns, extract, tables
from sluice.sources.rest_api.setup_tests import setup_tests

__all__ = ["SERVICE", "RestApiConfig", "extract", "secret_values", "setup_tests", "tables"]


def _secret_forms(plain_config: dict[str, Any]) -> list[str]:
    return secret_values(RestApiConfig.model_validate(plain_config))


def _select_tables(config: dict[str, Any], enabled: set[str]) -> dict[str, Any]:
    return {**config, "tables": [t for t in config.get("tables") or [] if t.get("name") in enabled]}


SERVICE = Service(
    name="rest_api",
    title="REST API",
    description="Any paginated JSON HTTP API",
    config_model=RestApiConfig,
    naming_keys=("schema",),
    secret_paths=frozenset(secret_paths(RestApiConfig)),
    secret_destinations=secret_destinations(RestApiConfig),
    secret_forms=_secret_forms,
    tables=tables,
    extract=extract,
    setup_tests=setup_tests,
    networking_methods=ALL_NETWORKING_METHODS,
    select_tables=_select_tables,
    columns=columns,
)
