"""Shared fixtures: AWS is moto in-process, built from template.yaml.

DynamoDB can instead be DynamoDB Local (AWS's emulator, tests/support/dynamodb_local): a module or
test marked `@pytest.mark.backends("moto", "dynamodb_local")` runs once on each, and one marked
`@pytest.mark.backends("dynamodb_local")` only there (concurrency and DynamoDB's limits, which
in-process moto does not model faithfully). Every other AWS service stays on moto either way.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.resources import LocalResources, create_resources

REGION = "us-east-1"
BACKENDS = ("moto", "dynamodb_local")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "backends(*names): run the test on each named DynamoDB backend (moto, dynamodb_local)"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("backends")
    if marker is None or "backend" not in metafunc.fixturenames:
        return
    unknown = set(marker.args) - set(BACKENDS)
    assert not unknown, f"unknown backends {unknown}"
    metafunc.parametrize("backend", marker.args, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """Which DynamoDB the test runs on (moto unless the test is marked with `backends`)."""
    return str(getattr(request, "param", "moto"))


@pytest.fixture(scope="session")
def dynamodb_local() -> Iterator[str]:
    """The endpoint of one DynamoDB Local for the session (each test gets its own tables)."""
    from tests.support import dynamodb_local as server

    try:
        running = server.start()
    except server.NotInstalled as exc:
        if os.environ.get("SLUICE_REQUIRE_DYNAMODB_LOCAL"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    yield running.endpoint
    running.stop()


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
def aws(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, backend: str, tmp_path: Path
) -> Iterator[LocalResources]:
    """moto in-process with the template's tables, key, bus, rules and secrets created (the tables
    on DynamoDB Local instead when `backend` says so, under names of their own); duckdb
    destinations under the test's own data folder."""
    for var in [v for v in os.environ if v.startswith("AWS_ENDPOINT_URL")]:
        monkeypatch.delenv(var)  # with an endpoint set, mock_aws stops intercepting
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Sluice")
    monkeypatch.setenv("SLUICE_ALLOW_LOOPBACK", "1")
    monkeypatch.setenv("SLUICE_DATA_DIR", str(tmp_path / "data"))
    endpoint = request.getfixturevalue("dynamodb_local") if backend == "dynamodb_local" else None
    with mock_aws():
        stack = "sluice"
        if endpoint is not None:
            monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint)  # only DynamoDB leaves moto
            stack = f"t{uuid.uuid4().hex[:12]}"
        session = boto3.session.Session(region_name=REGION)
        created = create_resources(session, stack=stack)
        for key, value in created.env.items():
            monkeypatch.setenv(key, value)
        _forget_cached_clients()
        try:
            yield created
        finally:
            if endpoint is not None:
                ddb = session.client("dynamodb")
                for name in ddb.list_tables()["TableNames"]:
                    if name.startswith(f"{stack}-"):
                        ddb.delete_table(TableName=name)
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
