"""The sync worker into the `iceberg` destination: a real local API, Iceberg tables on a moto server's S3
and Glue, read back with pyiceberg and with DuckDB from the Parquet files."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from local.sample_api import SampleApi
from sluice.destinations.iceberg import BATCH_PROPERTY, FIRST_BATCH_PROPERTY, table_name
from sluice.storage.sync_store import SyncStore
from tests.support.api_events import call, make_group
from tests.support.lake import glue_catalog, iceberg_rows, moto_server, new_bucket, parquet_rows, point_at
from tests.support.syncing import (
    get_connection,
    make_rest_connection,
    run_worker,
    sample_api_config,
    sync_event,
)

DATABASE = "sluice_lake"
TABLE = table_name("shop", "items")


class Crash(BaseException):
    """Stands for the process dying: nothing in the engine catches it."""


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def lake(aws: Any, server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """S3 and Glue on the server (pyarrow cannot reach moto in-process); the rest stays on mock_aws."""
    from sluice.aws import reset_clients

    point_at(monkeypatch, server)
    reset_clients()
    return server


@pytest.fixture
def api() -> Iterator[SampleApi]:
    with SampleApi(rows=237, ties=7) as server:
        yield server


@pytest.fixture
def connection(lake: str, api: SampleApi) -> dict[str, Any]:
    group_id = make_group()
    config = {"bucket": new_bucket(lake), "prefix": "lake", "database": DATABASE}
    reply = call("create_destination", body={"group_id": group_id, "service": "iceberg", "config": config})
    assert reply.status == 201, reply.body
    return make_rest_connection(group_id, sample_api_config(api.url, page_size=20))


def _plain(value: Any) -> Any:
    # ISO timestamps from the source land as timestamptz; compare them as the source wrote them.
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(value, datetime) else value


def assert_lake_matches_source(endpoint: str, api: SampleApi) -> None:
    by_pyiceberg = iceberg_rows(endpoint, DATABASE, TABLE)
    assert parquet_rows(endpoint, DATABASE, TABLE) == by_pyiceberg
    source = {r["id"]: r for r in api.data.all_rows()}
    assert set(by_pyiceberg) == set(source)
    for row_id, row in source.items():
        got = by_pyiceberg[row_id]
        assert {k: _plain(got[k]) for k in row} == row, row_id
        assert got["_fivetran_deleted"] is False
        assert got["_fivetran_synced"] is not None


def committed_batches(endpoint: str) -> list[tuple[str, str]]:
    table = glue_catalog(endpoint).load_table((DATABASE, TABLE))
    return [(s.summary[FIRST_BATCH_PROPERTY], s.summary[BATCH_PROPERTY]) for s in table.metadata.snapshots]


def test_a_historical_then_an_incremental_sync_land_the_source_one_row_per_key(
    lake: str, api: SampleApi, connection: dict[str, Any]
) -> None:
    result = run_worker(sync_event(connection["id"]))
    assert result["status"] == "SUCCESSFUL", result
    assert result["rows_upserted"] == 237
    assert_lake_matches_source(lake, api)
    assert len(committed_batches(lake)) == 1  # one flush at the end of a short sync: one commit
    types = {
        f.name: str(f.field_type) for f in glue_catalog(lake).load_table((DATABASE, TABLE)).schema().fields
    }
    assert types["id"] == "long" and types["price"] == "double" and types["updated_at"] == "timestamptz"

    api.update([3, 50])
    api.add(4)
    assert run_worker(sync_event(connection["id"]))["status"] == "SUCCESSFUL"
    assert_lake_matches_source(lake, api)
    assert iceberg_rows(lake, DATABASE, TABLE)[3]["version"] == 2
    assert get_connection(connection["id"])["succeeded_at"] is not None


def test_a_crash_between_commit_and_checkpoint_is_replayed_without_a_second_commit(
    lake: str, api: SampleApi, connection: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sluice.settings import get_settings

    original = SyncStore.commit_checkpoint
    calls = {"n": 0}

    def crash_on_third(self: SyncStore, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise Crash()  # the destination has committed this checkpoint's batches; DynamoDB has not
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SyncStore, "commit_checkpoint", crash_on_third)
    monkeypatch.setenv("SYNC_COMMIT_EVERY_SECONDS", "0")
    get_settings.cache_clear()
    event = sync_event(connection["id"])
    with pytest.raises(Crash):
        run_worker(event)
    before_replay = committed_batches(lake)
    assert len(before_replay) == 3

    result = run_worker(event)  # Lambda retries the same event: the same sync replays from its checkpoint
    assert result["status"] == "SUCCESSFUL", result
    assert_lake_matches_source(lake, api)
    after = committed_batches(lake)
    assert after[:3] == before_replay
    # The replayed page was skipped, not committed again: no batch id appears in two snapshots.
    lasts = [last for _, last in after]
    assert len(set(lasts)) == len(lasts)
    assert before_replay[2][1] not in {first for first, _ in after[3:]}


def test_an_iceberg_destination_with_a_bad_config_is_refused_in_the_envelope(aws: Any) -> None:
    group_id = make_group()
    for config in (
        {"bucket": "lake-bucket", "database": "Not-Glue"},
        {"bucket": "lake-bucket"},
        {"bucket": "lake-bucket", "database": "lake", "region": "nowhere"},
    ):
        body = {"group_id": group_id, "service": "iceberg", "config": config}
        reply = call("create_destination", body=body)
        assert reply.status == 400, reply.body
        assert reply.body["code"] == "InvalidInput", reply.body
    config = {"bucket": "lake-bucket", "prefix": "raw/", "database": "lake", "region": "eu-west-1"}
    reply = call("create_destination", body={"group_id": group_id, "service": "iceberg", "config": config})
    assert reply.status == 201, reply.body
    assert reply.data["config"] == config
