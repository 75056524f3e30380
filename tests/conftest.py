"""Shared fixtures: AWS is moto in-process, built from template.yaml."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.resources import LocalResources, create_resources

REGION = "us-east-1"

# A real PostgreSQL server (`pg_server`, `pg_database`), started only by the tests that ask for it.
pytest_plugins = ("tests.support.postgres",)


def _forget_cached_clients() -> None:
    from sluice.aws import reset_clients
    from sluice.config_secrets import secret_box
    from sluice.settings import get_settings

    get_settings.cache_clear()
    reset_clients()
    secret_box.cache_clear()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalResources]:
    """moto in-process with the template's tables, key, bus, rules and secrets created."""
    for var in [v for v in os.environ if v.startswith("AWS_ENDPOINT_URL")]:
        monkeypatch.delenv(var)  # with an endpoint set, mock_aws stops intercepting
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Sluice")
    monkeypatch.setenv("SLUICE_ALLOW_LOOPBACK", "1")
    with mock_aws():
        created = create_resources(boto3.session.Session(region_name=REGION))
        for key, value in created.env.items():
            monkeypatch.setenv(key, value)
        _forget_cached_clients()
        yield created
    _forget_cached_clients()


@pytest.fixture
def store(aws: LocalResources) -> Any:
    """The domain store (sluice.storage.store.Store) on the test's backend."""
    from sluice.storage.store import get_store

    return get_store()


@pytest.fixture
def table(store: Any) -> Any:
    """The older name of `store`, kept for the tests that still ask for it."""
    return store


@pytest.fixture
def bus(aws: LocalResources) -> Any:
    from tests.support.bus import BusTap

    return BusTap(aws.env["EVENT_BUS_NAME"])
