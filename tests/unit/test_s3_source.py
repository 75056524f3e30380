"""The s3 source on moto: CSV and JSON lines, chunks, the pattern, and LastModified incremental state."""

from __future__ import annotations

import gzip
import json
import time
from datetime import datetime
from typing import Any
from unittest import mock

import boto3
import pytest

from local.resources import LocalResources
from sluice import tenant_roles
from sluice.contract import Checkpoint, Operation, TableSpec, Upserts
from sluice.sources import s3 as s3_source
from sluice.sources.base import SourceAuthError, SourceError

BUCKET = "sluice-source-files"


@pytest.fixture
def s3(aws: LocalResources) -> Any:
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    return client


def config(**overrides: Any) -> dict[str, Any]:
    base = {
        "schema": "files",
        "table": "events",
        "bucket": BUCKET,
        "prefix": "exports/",
        "primary_key": ["id"],
    }
    return base | overrides


def run(cfg: dict[str, Any], state: dict[str, Any] | None = None) -> list[Operation]:
    return list(s3_source.extract(cfg, state or {}, time.monotonic() + 60))


def rows_of(ops: list[Operation]) -> list[dict[str, Any]]:
    return [row for op in ops if isinstance(op, Upserts) for row in op.rows]


def state_of(ops: list[Operation]) -> dict[str, Any]:
    last = ops[-1]
    assert isinstance(last, Checkpoint)
    return json.loads(json.dumps(last.state))


def put(s3: Any, key: str, body: str | bytes) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode() if isinstance(body, str) else body)


def at(when: str) -> Any:
    """Objects written inside this block get this LastModified (moto stamps puts with the clock)."""
    from moto.s3 import models

    return mock.patch.object(models, "utcnow", return_value=datetime.fromisoformat(when))


def test_csv_rows_are_strings_keyed_by_the_header(s3: Any) -> None:
    put(s3, "exports/a.csv", 'id,name,note\r\n1,Ann,"says ""hi"",\nbye"\r\n2,Bob,\r\n\r\n3,Cy\r\n')
    rows = rows_of(run(config()))
    assert rows == [
        {"id": "1", "name": "Ann", "note": 'says "hi",\nbye'},
        {"id": "2", "name": "Bob", "note": ""},
        {"id": "3", "name": "Cy", "note": None},
    ]


def test_csv_delimiter_bom_and_gzip(s3: Any) -> None:
    put(s3, "exports/a.csv.gz", gzip.compress("\ufeffid;city\n1;Zürich\n".encode()))
    assert rows_of(run(config(delimiter=";"))) == [{"id": "1", "city": "Zürich"}]


def test_json_lines_keep_their_types(s3: Any) -> None:
    put(s3, "exports/a.jsonl", '{"id": 1, "tags": ["x"], "n": 1.5}\n\n{"id": 2, "ok": true, "s": "\u2028"}')
    assert rows_of(run(config(file_type="jsonl"))) == [
        {"id": 1, "tags": ["x"], "n": 1.5},
        {"id": 2, "ok": True, "s": "\u2028"},
    ]


def test_a_bad_json_line_names_the_file_and_line(s3: Any) -> None:
    put(s3, "exports/a.jsonl", '{"id": 1}\n[1, 2]\n')
    with pytest.raises(SourceError, match=r"Line 2 of 'exports/a.jsonl' is not a JSON object"):
        run(config(file_type="jsonl"))


def test_large_files_are_read_in_chunks_with_checkpoints_between(s3: Any) -> None:
    put(s3, "exports/big.csv", "id,v\n" + "".join(f"{i},{i * 2}\n" for i in range(12_001)))
    ops = run(config())
    batches = [len(op.rows) for op in ops if isinstance(op, Upserts)]
    assert batches == [5_000, 5_000, 2_001]
    assert [type(op).__name__ for op in ops] == ["Upserts", "Checkpoint"] * 3
    middle = ops[1]
    assert isinstance(middle, Checkpoint) and middle.state["file"]["rows"] == 5_000
    assert "file" not in state_of(ops)


def test_a_stop_inside_a_file_resumes_after_the_rows_already_loaded(s3: Any) -> None:
    put(s3, "exports/big.csv", "id\n" + "".join(f"{i}\n" for i in range(11_000)))
    ops = run(config())
    middle = ops[3]  # the checkpoint after the second chunk
    assert isinstance(middle, Checkpoint)
    resumed = run(config(), json.loads(json.dumps(middle.state)))
    assert [r["id"] for r in rows_of(resumed)] == [str(i) for i in range(10_000, 11_000)]


def test_pattern_and_prefix_choose_the_files(s3: Any) -> None:
    put(s3, "exports/a.csv", "id\n1\n")
    put(s3, "exports/b.txt", "id\n2\n")
    put(s3, "exports/sub/c.csv", "id\n3\n")
    put(s3, "other/d.csv", "id\n4\n")
    put(s3, "exports/folder/", "")
    assert sorted(r["id"] for r in rows_of(run(config(pattern=r"\.csv$")))) == ["1", "3"]
    assert sorted(r["id"] for r in rows_of(run(config(pattern=r"^exports/[^/]+\.csv$")))) == ["1"]


def test_second_sync_reads_only_files_that_arrived_since(s3: Any) -> None:
    with at("2024-05-01T10:00:00"):
        put(s3, "exports/1.csv", "id\n1\n")
    first = run(config())
    with at("2024-05-01T11:00:00"):
        put(s3, "exports/2.csv", "id\n2\n")
    second = run(config(), state_of(first))
    assert [r["id"] for r in rows_of(second)] == ["2"]
    assert rows_of(run(config(), state_of(second))) == []
    assert state_of(second)["keys"] == ["exports/2.csv"]


def test_a_file_with_the_same_last_modified_arriving_later_is_read_once(s3: Any) -> None:
    with at("2024-05-01T10:00:00"):
        put(s3, "exports/b.csv", "id\nb\n")
    first = run(config())
    with at("2024-05-01T10:00:00"):  # lands after the sync, stamped with the same second
        put(s3, "exports/a.csv", "id\na\n")
        put(s3, "exports/c.csv", "id\nc\n")
    second = run(config(), state_of(first))
    assert sorted(r["id"] for r in rows_of(second)) == ["a", "c"]
    assert sorted(state_of(second)["keys"]) == ["exports/a.csv", "exports/b.csv", "exports/c.csv"]
    assert rows_of(run(config(), state_of(second))) == []


def test_a_rewritten_file_is_read_again(s3: Any) -> None:
    with at("2024-05-01T10:00:00"):
        put(s3, "exports/a.csv", "id,v\n1,old\n")
    first = run(config())
    with at("2024-05-01T12:00:00"):
        put(s3, "exports/a.csv", "id,v\n1,new\n")
    assert rows_of(run(config(), state_of(first))) == [{"id": "1", "v": "new"}]


def test_files_are_loaded_oldest_first_and_each_checkpoint_covers_its_file(s3: Any) -> None:
    with at("2024-05-01T12:00:00"):
        put(s3, "exports/a.csv", "id\nnewer\n")
    with at("2024-05-01T10:00:00"):
        put(s3, "exports/z.csv", "id\nolder\n")
    ops = run(config())
    assert [r["id"] for r in rows_of(ops)] == ["older", "newer"]
    after_first = ops[1]
    assert isinstance(after_first, Checkpoint)
    # Stopping after the first file: the continuation reads only the second.
    assert [r["id"] for r in rows_of(run(config(), after_first.state))] == ["newer"]


def test_missing_bucket_and_denied_access_are_clear_errors(s3: Any) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        run(config(bucket="no-such-bucket-here"))
    denied = s3_source._failure(
        __import__("botocore.exceptions").exceptions.ClientError(
            {"Error": {"Code": "AccessDenied", "Message": "no"}}, "ListObjectsV2"
        ),
        "list files",
        BUCKET,
    )
    assert isinstance(denied, SourceAuthError) and "s3:ListBucket" in str(denied)


def test_a_role_is_assumed_before_reading(s3: Any) -> None:
    iam = boto3.client("iam", region_name="us-east-1")
    role = iam.create_role(RoleName="reader", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    put(s3, "exports/a.csv", "id\n1\n")
    with mock.patch.object(tenant_roles, "client", wraps=tenant_roles.client) as clients:
        assert rows_of(run(config(role_arn=role, external_id="acct_unit"))) == [{"id": "1"}]
    assert [c.args[0] for c in clients.call_args_list] == ["sts"]


def test_tables_is_the_configured_table() -> None:
    assert s3_source.tables(config(primary_key=["id", "day"])) == [TableSpec("events", ("id", "day"))]
