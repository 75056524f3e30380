"""The s3 destination: JSON-lines objects per table and batch under deterministic keys (on moto)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from local.resources import LocalResources
from sluice.aws import client
from sluice.contract import TableSpec
from sluice.destinations import DestinationError, open_destination
from sluice.destinations.s3 import S3Destination, object_key

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
USERS = TableSpec("users", ("id",))
BUCKET = "sluice-lake"


@pytest.fixture
def s3(aws: LocalResources) -> Any:
    s3 = client("s3")
    s3.create_bucket(Bucket=BUCKET)
    return s3


@pytest.fixture
def dest(s3: Any) -> Iterator[S3Destination]:
    destination = open_destination("s3", {"bucket": BUCKET, "prefix": "lake/"}, "acct_unit")
    assert isinstance(destination, S3Destination)
    yield destination
    destination.close()


def keys(s3: Any) -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def lines(s3: Any, key: str) -> list[dict[str, Any]]:
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
    assert body.endswith("\n")
    return [json.loads(line) for line in body.splitlines()]


def test_upsert_writes_one_json_lines_object_per_batch(dest: S3Destination, s3: Any) -> None:
    rows = [{"id": 1, "name": "Ada", "tags": ["x"]}, {"id": 2, "name": "Bo", "tags": None}]

    assert dest.upsert("crm", USERS, rows, T0, "000001-0") == 2
    dest.flush()

    assert keys(s3) == ["lake/crm/users/000001-0.jsonl"]
    assert lines(s3, "lake/crm/users/000001-0.jsonl") == [
        {
            "id": 1,
            "name": "Ada",
            "tags": ["x"],
            "_fivetran_synced": "2024-05-01T12:00:00.000000Z",
            "_fivetran_deleted": False,
        },
        {
            "id": 2,
            "name": "Bo",
            "tags": None,
            "_fivetran_synced": "2024-05-01T12:00:00.000000Z",
            "_fivetran_deleted": False,
        },
    ]


def test_replayed_batch_overwrites_the_same_object_with_the_same_content(
    dest: S3Destination, s3: Any
) -> None:
    rows = [{"id": i, "name": f"user {i}"} for i in range(100)]
    dest.upsert("crm", USERS, rows, T0, "000001-0")
    dest.flush()
    first = s3.get_object(Bucket=BUCKET, Key="lake/crm/users/000001-0.jsonl")["Body"].read()

    dest.upsert("crm", USERS, rows, T0, "000001-0")
    dest.flush()

    assert keys(s3) == ["lake/crm/users/000001-0.jsonl"]
    assert s3.get_object(Bucket=BUCKET, Key="lake/crm/users/000001-0.jsonl")["Body"].read() == first


def test_deletes_are_key_rows_flagged_deleted_in_their_own_object(dest: S3Destination, s3: Any) -> None:
    dest.upsert("crm", USERS, [{"id": 1, "name": "Ada"}], T0, "000001-0")

    assert dest.delete("crm", USERS, [{"id": 1, "name": "ignored"}], T1, "000001-1") == 1
    dest.flush()

    assert keys(s3) == ["lake/crm/users/000001-0.jsonl", "lake/crm/users/000001-1.deletes.jsonl"]
    assert lines(s3, "lake/crm/users/000001-1.deletes.jsonl") == [
        {"id": 1, "_fivetran_synced": "2024-05-01T13:00:00.000000Z", "_fivetran_deleted": True}
    ]


def test_composite_key_deletes_carry_every_key_column(dest: S3Destination, s3: Any) -> None:
    order_lines = TableSpec("order_lines", ("order_id", "line"))

    dest.delete("crm", order_lines, [{"order_id": 7, "line": 2}], T0, "b1")
    dest.flush()

    assert lines(s3, "lake/crm/order_lines/b1.deletes.jsonl") == [
        {
            "order_id": 7,
            "line": 2,
            "_fivetran_synced": "2024-05-01T12:00:00.000000Z",
            "_fivetran_deleted": True,
        }
    ]


def test_deletes_without_the_key_are_refused(dest: S3Destination) -> None:
    with pytest.raises(DestinationError, match="lack key column 'line'"):
        dest.delete("crm", TableSpec("order_lines", ("order_id", "line")), [{"order_id": 7}], T0, "b1")


def test_table_without_primary_key_gets_a_row_hash(dest: S3Destination, s3: Any) -> None:
    events = TableSpec("events", ())
    rows = [{"kind": "click", "at": 1}, {"at": 1, "kind": "click"}]

    dest.upsert("crm", events, rows, T0, "b1")
    dest.delete("crm", events, [{"kind": "click", "at": 1}], T1, "b2")
    dest.flush()

    written = lines(s3, "lake/crm/events/b1.jsonl")
    deleted = lines(s3, "lake/crm/events/b2.deletes.jsonl")
    ids = {row["_fivetran_id"] for row in written}
    assert len(ids) == 1  # the same row, whatever its key order
    assert deleted == [
        {
            "_fivetran_id": ids.pop(),
            "_fivetran_synced": "2024-05-01T13:00:00.000000Z",
            "_fivetran_deleted": True,
        }
    ]


def test_rows_keep_their_own_shape_across_batches(dest: S3Destination, s3: Any) -> None:
    from decimal import Decimal

    dest.upsert("crm", USERS, [{"id": 1, "zip": 12345}], T0, "b1")
    dest.upsert("crm", USERS, [{"id": 2, "zip": "SW1A 1AA", "price": Decimal("1.10"), "at": T0}], T0, "b2")
    dest.flush()

    assert lines(s3, "lake/crm/users/b1.jsonl")[0]["zip"] == 12345
    second = lines(s3, "lake/crm/users/b2.jsonl")[0]
    assert (second["zip"], second["price"], second["at"]) == ("SW1A 1AA", "1.10", "2024-05-01T12:00:00+00:00")


def test_many_batches_are_all_written_by_flush(s3: Any) -> None:
    dest = S3Destination(open_config(prefix=""), "acct_unit", max_in_flight=3)
    for batch in range(20):
        dest.upsert("crm", USERS, [{"id": batch}], T0, f"b{batch:03d}")
    dest.flush()
    dest.close()

    assert keys(s3) == [f"crm/users/b{batch:03d}.jsonl" for batch in range(20)]


def test_a_failed_upload_surfaces_at_flush(s3: Any) -> None:
    dest = S3Destination(open_config(bucket="no-such-bucket"), "acct_unit")
    dest.upsert("crm", USERS, [{"id": 1}], T0, "b1")

    with pytest.raises(DestinationError, match=re.escape("s3://no-such-bucket/lake/crm/users/b1.jsonl")):
        dest.flush()
    with pytest.raises(DestinationError):
        dest.upsert("crm", USERS, [{"id": 2}], T0, "b2")
    dest.close()  # never raises: the failure was flush's to report


def test_empty_batches_write_nothing(dest: S3Destination, s3: Any) -> None:
    assert dest.upsert("crm", USERS, [], T0, "b1") == 0
    assert dest.delete("crm", USERS, [], T0, "b2") == 0
    dest.flush()

    assert keys(s3) == []


def test_writes_after_close_are_refused(dest: S3Destination) -> None:
    dest.close()
    with pytest.raises(DestinationError, match="closed"):
        dest.upsert("crm", USERS, [{"id": 1}], T0, "b1")


@pytest.mark.parametrize("batch_id", ["", "a/b", ".."])
def test_batch_ids_that_would_change_the_key_layout_are_refused(batch_id: str) -> None:
    with pytest.raises(DestinationError, match="Invalid batch id"):
        object_key("lake", "crm", "users", batch_id)


def test_object_keys_are_deterministic() -> None:
    assert object_key("/lake/raw/", "crm", "users", "42-0") == "lake/raw/crm/users/42-0.jsonl"
    assert object_key("", "crm", "users", "42-0", deletes=True) == "crm/users/42-0.deletes.jsonl"


def open_config(bucket: str = BUCKET, prefix: str = "lake") -> Any:
    from sluice.destinations import S3DestinationConfig

    return S3DestinationConfig(bucket=bucket, prefix=prefix)
