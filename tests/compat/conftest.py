"""Compat tests run the real Fivetran client packages (installed by `make clients` in their own virtual
environments) against one local stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.local_stack import LocalStackProcess, start_local_stack

CLIENTS = Path(__file__).resolve().parents[2] / ".venv-clients"


def client_python(name: str) -> Path:
    python = CLIENTS / name / "bin" / "python"
    if not python.exists():
        pytest.fail(f"{python} is missing: `make clients` installs the real Fivetran clients")
    return python


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    running = start_local_stack(tmp_path_factory.mktemp("sluice-compat"))
    yield running
    running.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/compat/" in str(item.fspath):
            item.add_marker(pytest.mark.compat)
