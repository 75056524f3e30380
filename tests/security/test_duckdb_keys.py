"""Issue 9, item 8: source keys that differ only by letter case (`Name` / `name`) each keep their value
in DuckDB (which matches column names without regard to case), under a deterministic, documented
rename; a row with an empty key fails with a message that says so. The s3 destination keeps JSON keys
as they are (case-sensitive): both spellings arrive there unchanged."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sluice.contract import TableSpec
from sluice.destinations import DestinationError, DuckDbConfig, open_destination
from sluice.destinations.duckdb import DuckDbDestination, case_apart_name
from sluice.settings import get_settings

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
USERS = TableSpec("users", ("id",))
ACCOUNT = "acct_keys"


@pytest.fixture
def dest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DuckDbDestination]:
    monkeypatch.setenv("SLUICE_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    destination = DuckDbDestination(DuckDbConfig(path="keys.duckdb"), ACCOUNT)
    yield destination
    destination.close()
    get_settings.cache_clear()


def rows_of(dest: DuckDbDestination, table: str = "users") -> list[dict[str, Any]]:
    result = dest._connection().execute(
        f'SELECT * EXCLUDE (_fivetran_synced) FROM "crm"."{table}" ORDER BY 1'
    )
    names = [column[0] for column in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def test_the_rename_is_the_key_and_six_hex_digits_of_its_md5() -> None:
    assert case_apart_name("name") == "name__b06893"  # md5("name") begins b06893
    assert case_apart_name("name") == case_apart_name("name") != case_apart_name("NAME")


def test_keys_differing_only_by_case_in_one_row_keep_both_values(dest: DuckDbDestination) -> None:
    dest.upsert("crm", USERS, [{"id": 1, "name": "lower", "Name": "Title"}], T0, "b1")

    # "Name" sorts before "name": it keeps its name; "name" gets the rename.
    assert rows_of(dest) == [
        {"id": 1, "Name": "Title", case_apart_name("name"): "lower", "_fivetran_deleted": False}
    ]


def test_spellings_across_rows_and_batches_land_in_the_same_columns_every_time(
    dest: DuckDbDestination,
) -> None:
    dest.upsert("crm", USERS, [{"id": 1, "Name": "a"}, {"id": 2, "name": "b"}], T0, "b1")
    # A later batch with only the lowercase spelling: it is not merged into "Name".
    dest.upsert("crm", USERS, [{"id": 3, "name": "c"}], T0, "b2")
    dest.upsert("crm", USERS, [{"id": 4, "NAME": "d"}, {"id": 5, "Name": "e"}], T0, "b3")

    lower, upper = case_apart_name("name"), case_apart_name("NAME")
    assert [(r["id"], r["Name"], r[lower], r[upper]) for r in rows_of(dest)] == [
        (1, "a", None, None),
        (2, None, "b", None),
        (3, None, "c", None),
        (4, None, None, "d"),
        (5, "e", None, None),
    ]


def test_the_primary_key_keeps_its_name(dest: DuckDbDestination) -> None:
    dest.upsert("crm", USERS, [{"ID": "upper", "id": 1}], T0, "b1")

    assert rows_of(dest) == [{"id": 1, case_apart_name("ID"): "upper", "_fivetran_deleted": False}]


def test_a_key_that_is_a_system_column_in_another_case_is_kept(dest: DuckDbDestination) -> None:
    dest.upsert("crm", USERS, [{"id": 1, "_FIVETRAN_DELETED": "source's own"}], T0, "b1")

    assert rows_of(dest) == [
        {"id": 1, case_apart_name("_FIVETRAN_DELETED"): "source's own", "_fivetran_deleted": False}
    ]


def test_a_table_without_primary_key_keeps_both_spellings(dest: DuckDbDestination) -> None:
    events = TableSpec("events", ())
    dest.upsert("crm", events, [{"Kind": "a", "kind": "b"}], T0, "b1")

    (row,) = rows_of(dest, "events")
    assert (row["Kind"], row[case_apart_name("kind")]) == ("a", "b")


def test_a_row_with_an_empty_key_fails_saying_so(dest: DuckDbDestination) -> None:
    with pytest.raises(DestinationError) as failure:
        dest.upsert("crm", USERS, [{"id": 1, "": "x"}], T0, "b1")

    assert (
        str(failure.value)
        == "A row of table 'users' has a value under an empty key; every column needs a name"
    )
    assert "primary key" not in str(failure.value)


def test_the_s3_destination_keeps_every_spelling_as_it_is(aws: Any) -> None:
    from sluice.aws import client

    s3 = client("s3")
    s3.create_bucket(Bucket="case-lake")
    with open_destination("s3", {"bucket": "case-lake"}, ACCOUNT) as dest:  # type: ignore[attr-defined]
        dest.upsert("crm", USERS, [{"id": 1, "Name": "Title", "name": "lower"}], T0, "b1")
        dest.flush()

    body = s3.get_object(Bucket="case-lake", Key="crm/users/b1.jsonl")["Body"].read()
    (line,) = [json.loads(text) for text in body.decode().splitlines()]
    assert (line["Name"], line["name"]) == ("Title", "lower")
