"""PrivateLink: connections with networking_method PrivateLink may reach the operator's private CIDRs
(SLUICE_PRIVATE_LINK_CIDRS, the PrivateLinkCidrs template parameter) and nothing else private; every
other method keeps refusing them. The source is a real server on a private address of this machine's
loopback interface (added for the test, removed after)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.sample_api import SampleApi
from sluice.settings import _private_link_cidrs, get_settings
from tests.support.syncing import (
    duckdb_file,
    duckdb_rows,
    make_group_with_duckdb,
    make_rest_connection,
    run_worker,
    sample_api_config,
    sync_event,
)

PRIVATE = "10.255.77.1"  # a private address nothing else on the machine uses


@pytest.fixture
def private_address() -> Iterator[str]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("adding a private address to lo needs root and iproute2")
    subprocess.run(["ip", "addr", "add", f"{PRIVATE}/32", "dev", "lo"], check=True)
    try:
        yield PRIVATE
    finally:
        subprocess.run(["ip", "addr", "del", f"{PRIVATE}/32", "dev", "lo"], check=True)


@pytest.fixture
def lake(aws) -> Path:
    return duckdb_file("private.duckdb")


def cidrs(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("SLUICE_PRIVATE_LINK_CIDRS", value)
    get_settings.cache_clear()


def connect(api: SampleApi, lake_file: str, **body: Any) -> dict[str, Any]:
    """A connection to `api` on the private address, in a group of its own (a duckdb file each)."""
    return make_rest_connection(
        make_group_with_duckdb(lake_file, name=lake_file.split(".")[0]),
        sample_api_config(f"http://{PRIVATE}:{api.port}", token="t0k3n"),
        run_setup_tests=True,
        **body,
    )


def test_private_link_reaches_the_listed_cidr_and_only_private_link_does(
    aws, lake, private_address: str, monkeypatch
) -> None:
    cidrs(monkeypatch, "10.255.77.0/24")
    with SampleApi(rows=8, token="t0k3n", host=private_address) as api:
        linked = connect(api, lake.name, networking_method="PrivateLink", private_link_id="pl_office")
        assert linked["status"]["setup_state"] == "connected", linked["setup_tests"]
        result = run_worker(sync_event(linked["id"]))
        assert result["status"] == "SUCCESSFUL", result
        assert len(duckdb_rows(lake)) == 8
        served = len(api.requests)

        direct = connect(api, "direct.duckdb")
        assert direct["setup_tests"][0]["status"] == "FAILED"
        assert "private network address" in direct["setup_tests"][0]["message"]
        refused = run_worker(sync_event(direct["id"]))
        assert refused["status"] == "FAILURE_WITH_TASK" and "private network address" in refused["message"]
        assert len(api.requests) == served


def test_an_address_outside_the_listed_cidrs_stays_refused(
    aws, lake, private_address: str, monkeypatch
) -> None:
    cidrs(monkeypatch, "10.20.0.0/16")
    with SampleApi(rows=1, token="t0k3n", host=private_address) as api:
        linked = connect(api, lake.name, networking_method="PrivateLink", private_link_id="pl_office")
        assert linked["setup_tests"][0]["status"] == "FAILED"
        assert api.requests == []


@pytest.mark.parametrize(
    "value", ["169.254.0.0/16", "169.254.169.254/32", "0.0.0.0/0", "127.0.0.0/8", "fe80::/64"]
)
def test_the_metadata_range_and_loopback_can_never_be_listed(value: str) -> None:
    with pytest.raises(ValueError, match="may never reach"):
        _private_link_cidrs(f"10.0.0.0/8,{value}")


def test_a_list_that_is_not_cidrs_is_refused() -> None:
    with pytest.raises(ValueError, match="not a CIDR"):
        _private_link_cidrs("10.0.0.1/8")  # host bits set
    assert [str(n) for n in _private_link_cidrs(" 10.0.0.0/8 , fd12::/48 ")] == ["10.0.0.0/8", "fd12::/48"]
