"""One local stack per e2e session, started as `python -m local.stack`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.local_stack import LocalStackProcess, start_local_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    running = start_local_stack(tmp_path_factory.mktemp("sluice-data"))
    yield running
    running.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
