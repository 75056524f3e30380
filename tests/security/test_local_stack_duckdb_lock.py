"""Issue 17: a DuckDB file held open by another process fails the sync with a reason that says so
(not a silent failure, and not DuckDB's text with the server's paths in it)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sluice.destinations import DestinationError, DuckDbConfig
from sluice.destinations.duckdb import DuckDbDestination

ACCOUNT = "acct_held"
HOLD = """
import sys, duckdb
db = duckdb.connect(sys.argv[1])
print("holding", flush=True)
sys.stdin.read()  # until the test closes our stdin
"""


@pytest.fixture
def held_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[subprocess.Popen[str]]:
    from sluice.settings import get_settings

    monkeypatch.setenv("SLUICE_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    (tmp_path / ACCOUNT).mkdir()
    path = tmp_path / ACCOUNT / "held.duckdb"  # where the account's file lives
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    yield holder
    assert holder.stdin is not None
    holder.stdin.close()
    holder.wait(timeout=60)
    get_settings.cache_clear()


def test_a_file_open_in_another_process_is_a_clear_failure_reason(held_file, tmp_path: Path) -> None:
    with pytest.raises(DestinationError) as failed:
        DuckDbDestination(DuckDbConfig(path="held.duckdb"), ACCOUNT)
    reason = str(failed.value)
    assert reason.startswith(
        f"DuckDB database 'held.duckdb' is open in another process (PID {held_file.pid})"
    )
    assert "close it there" in reason
    assert str(tmp_path) not in reason  # no server path in what the tenant reads
