"""The `s3` source: CSV or JSON-lines files in a bucket, one table per connection.

Files under `prefix` whose key matches `pattern` (a regular expression searched in the key) are
read oldest first (LastModified, then key), in chunks of `CHUNK_ROWS` rows, each chunk one
`Upserts`. CSV values stay strings (the first row is the header; a missing value is null);
JSON lines must be objects. Keys ending in `.gz` are gunzipped.

Incremental by LastModified. The state keeps the high-water mark (the LastModified of the
newest file fully loaded) and the keys loaded at exactly that instant, so a file is never read
twice and a file that lands later with the same LastModified (S3 has one-second resolution) is
still read. A file rewritten under the same key gets a new LastModified and is read again.
While a file is being read the state also holds its key, ETag and the rows already yielded:
a continuation skips those rows (if the ETag is unchanged) instead of reloading the file.
Limit: S3 dates a multipart upload by its start, so a large upload that completes after a newer
file was loaded falls below the mark; write such files under a new prefix or re-run a
historical sync.

State: {"last_modified": "<ISO 8601>", "keys": ["<key>", ...],
        "file": {"key": "<key>", "etag": "<etag>", "rows": <n>}}
"""

from __future__ import annotations

import codecs
import csv
import gzip
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Annotated, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import Field, ValidationError, field_validator

from sluice import aws
from sluice.connections.model import SetupTestResult
from sluice.contract import Checkpoint, Operation, TableSpec, Upserts
from sluice.sources.base import (
    ADVANCED,
    Name,
    Service,
    ServiceConfig,
    SetupTestOptions,
    SourceAuthError,
    SourceError,
    secret_paths,
)
from sluice.tenant_roles import ROLE_ARN_PATTERN, TenantAccountId, assumed_role_client

RoleArn = Annotated[str, Field(max_length=2048, pattern=ROLE_ARN_PATTERN)]


class S3Config(ServiceConfig):
    schema_: Name = Field(alias="schema")
    table: Name
    bucket: Annotated[str, Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.\-]+[a-z0-9]$")]
    prefix: str = ""
    pattern: str | None = None
    file_type: Literal["csv", "jsonl"] = "csv"
    primary_key: list[str] = Field(default_factory=list)
    delimiter: Annotated[str, ADVANCED, Field(min_length=1, max_length=1)] = ","
    role_arn: Annotated[RoleArn | None, ADVANCED] = None
    # The ExternalId Sluice assumes role_arn with: the connection's account id, set by Sluice.
    external_id: TenantAccountId = None

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value


CHUNK_ROWS = 5_000
_AUTH_CODES = frozenset(
    {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "403"}
)
_MISSING_BUCKET = frozenset({"NoSuchBucket", "404", "NotFound"})


@dataclass(frozen=True)
class S3File:
    key: str
    last_modified: datetime
    etag: str
    size: int


def _failure(exc: ClientError | BotoCoreError, action: str, bucket: str) -> SourceError:
    """A boto error as a user-readable SourceError (auth failures as SourceAuthError)."""
    if isinstance(exc, BotoCoreError):
        return SourceError(f"Could not {action} in bucket '{bucket}': {exc}")
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    if code in _AUTH_CODES:
        return SourceAuthError(
            f"Access denied to {action} in bucket '{bucket}' ({code}): allow s3:ListBucket on the bucket and "
            "s3:GetObject on its objects for Sluice's role (or the role in role_arn)"
        )
    if code in _MISSING_BUCKET:
        return SourceError(f"The bucket '{bucket}' does not exist (or is in another account): check bucket")
    return SourceError(
        f"Could not {action} in bucket '{bucket}': {code or 'error'} {error.get('Message', '')}".strip()
    )


def _client(config: S3Config) -> Any:
    if not config.role_arn:
        return aws.client("s3")
    if not config.external_id:
        # Saved before Sluice sent an ExternalId: never assume a role without one.
        raise SourceAuthError(
            "This connection has no external_id to assume its role_arn with: save its config again "
            "(PATCH /v1/connections/{id} with the config) and Sluice sets it to your account id"
        )
    try:
        return assumed_role_client("s3", config.role_arn, config.external_id, "sluice-s3-source")
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise SourceAuthError(
            f"Could not assume the role {config.role_arn} ({code}): its trust policy must allow "
            f"sts:AssumeRole by Sluice's role with the condition sts:ExternalId = '{config.external_id}'"
        ) from None


def _files(s3: Any, config: S3Config) -> Iterator[S3File]:
    """Every object under the prefix whose key matches the pattern (folders left out)."""
    pattern = re.compile(config.pattern) if config.pattern else None
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=config.bucket, Prefix=config.prefix):
            for item in page.get("Contents", ()):
                key = item["Key"]
                if key.endswith("/") or (pattern is not None and not pattern.search(key)):
                    continue
                yield S3File(
                    key, item["LastModified"], str(item.get("ETag", "")).strip('"'), int(item.get("Size", 0))
                )
    except (ClientError, BotoCoreError) as exc:
        raise _failure(exc, "list files", config.bucket) from None


def _open(s3: Any, config: S3Config, key: str, byte_range: str | None = None) -> IO[bytes]:
    try:
        extra = {"Range": byte_range} if byte_range else {}
        body: IO[bytes] = s3.get_object(Bucket=config.bucket, Key=key, **extra)["Body"]
    except (ClientError, BotoCoreError) as exc:
        raise _failure(exc, f"read '{key}'", config.bucket) from None
    if key.endswith(".gz"):
        return gzip.GzipFile(fileobj=body, mode="rb")  # type: ignore[return-value]
    return body


def _rows(stream: IO[bytes], config: S3Config, key: str) -> Iterator[dict[str, Any]]:
    lines = _lines(stream, key)
    if config.file_type == "jsonl":
        return _jsonl_rows(lines, key)
    return _csv_rows(lines, config.delimiter, key)


def _csv_rows(lines: Iterator[str], delimiter: str, key: str) -> Iterator[dict[str, Any]]:
    reader = csv.reader(lines, delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise SourceError(f"'{key}' is not valid CSV (line 1): {exc}") from None
    if not header or len(set(header)) != len(header):
        raise SourceError(f"The header row of '{key}' is empty or repeats a column name")
    width = len(header)
    try:
        for row in reader:
            if len(row) == width:
                yield dict(zip(header, row, strict=True))
            elif row:  # a blank line has no fields; short rows get nulls, extra fields are dropped
                yield dict(zip(header, (row + [None] * width)[:width], strict=True))
    except csv.Error as exc:
        raise SourceError(f"'{key}' is not valid CSV (line {reader.line_num}): {exc}") from None


def _lines(stream: IO[bytes], key: str) -> Iterator[str]:
    """UTF-8 lines with their endings (csv needs them inside quoted fields), read in large blocks."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    tail = ""
    while True:
        block = stream.read(1 << 20)
        try:
            text = decoder.decode(block, final=not block)
        except UnicodeDecodeError as exc:
            raise SourceError(f"'{key}' is not UTF-8 text ({exc.reason})") from None
        if not block:
            break
        # Split on "\n" only: str.splitlines would also break at \x0c, \u2028 and others inside values.
        lines = (tail + text).split("\n")
        tail = lines.pop()
        for line in lines:
            yield line + "\n"
    if tail:
        yield tail


def _jsonl_rows(lines: Iterator[str], key: str) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise SourceError(f"Line {number} of '{key}' is not valid JSON") from None
        if not isinstance(row, dict):
            raise SourceError(f"Line {number} of '{key}' is not a JSON object")
        yield row


def _chunks(rows: Iterator[dict[str, Any]], skip: int) -> Iterator[list[dict[str, Any]]]:
    for _ in range(skip):
        if next(rows, None) is None:
            return
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK_ROWS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _parse(config: dict[str, Any]) -> S3Config:
    try:
        return S3Config.model_validate(config)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors()[:5])
        raise SourceError(f"The s3 config is not valid ({fields})") from None


# ---- the three steps ------------------------------------------------------------------------------


def tables(config: dict[str, Any]) -> list[TableSpec]:
    parsed = _parse(config)
    return [TableSpec(parsed.table, tuple(parsed.primary_key))]


def extract(config: dict[str, Any], state: dict[str, Any], deadline: float) -> Iterator[Operation]:
    del deadline  # botocore retries within its own bounds; the engine stops at a checkpoint
    parsed = _parse(config)
    s3 = _client(parsed)
    mark = datetime.fromisoformat(state["last_modified"]) if state.get("last_modified") else None
    loaded: list[str] = list(state.get("keys") or [])
    at_mark = set(loaded)
    partial: dict[str, Any] = dict(state.get("file") or {})
    pending = sorted(
        (
            f
            for f in _files(s3, parsed)
            if mark is None or f.last_modified > mark or (f.last_modified == mark and f.key not in at_mark)
        ),
        key=lambda f: (f.last_modified, f.key),
    )

    def saved(extra: dict[str, Any] | None = None) -> dict[str, Any]:
        snapshot: dict[str, Any] = {"last_modified": mark.isoformat() if mark else None, "keys": list(loaded)}
        return snapshot | ({"file": extra} if extra else {})

    for found in pending:
        skip = (
            int(partial["rows"])
            if partial.get("key") == found.key and partial.get("etag") == found.etag
            else 0
        )
        done = skip
        stream = _open(s3, parsed, found.key)
        try:
            chunks = _chunks(_rows(stream, parsed, found.key), skip)
            chunk = next(chunks, None)
            while chunk is not None:
                following = next(chunks, None)
                done += len(chunk)
                yield Upserts(parsed.table, chunk)
                if following is not None:  # the file's last chunk is covered by the checkpoint below
                    yield Checkpoint(saved({"key": found.key, "etag": found.etag, "rows": done}))
                chunk = following
        except (ClientError, BotoCoreError) as exc:
            raise _failure(exc, f"read '{found.key}'", parsed.bucket) from None
        finally:
            stream.close()
        partial = {}
        if mark is None or found.last_modified > mark:
            mark, loaded = found.last_modified, [found.key]
        else:
            loaded = [*loaded, found.key]
        yield Checkpoint(saved())
    if not pending:
        yield Checkpoint(saved())


def setup_tests(config: dict[str, Any], options: SetupTestOptions) -> list[SetupTestResult]:
    parsed = _parse(config)
    titles = ["Accessing bucket", "Listing files", "Reading a file"]
    results: list[SetupTestResult] = []
    deadline = time.monotonic() + options.timeout

    def add(
        status: Literal["PASSED", "WARNING", "FAILED", "SKIPPED"], message: str, details: Any = None
    ) -> None:
        results.append(
            SetupTestResult(title=titles[len(results)], status=status, message=message, details=details)
        )

    def skip_rest(reason: str) -> list[SetupTestResult]:
        while len(results) < len(titles):
            add("SKIPPED", reason)
        return results

    try:
        s3 = _client(parsed)
        s3.head_bucket(Bucket=parsed.bucket)
    except SourceError as exc:
        add("FAILED", str(exc))
        return skip_rest("Skipped because 'Accessing bucket' failed")
    except (ClientError, BotoCoreError) as exc:
        add("FAILED", str(_failure(exc, "access the bucket", parsed.bucket)))
        return skip_rest("Skipped because 'Accessing bucket' failed")
    add("PASSED", f"Sluice can access the bucket '{parsed.bucket}'", {"bucket": parsed.bucket})

    where = f"s3://{parsed.bucket}/{parsed.prefix}" + (
        f" matching /{parsed.pattern}/" if parsed.pattern else ""
    )
    matched: list[S3File] = []
    try:
        for found in _files(s3, parsed):
            matched.append(found)
            if len(matched) >= 1000 or time.monotonic() > deadline - 1:
                break
    except SourceError as exc:
        add("FAILED", str(exc))
        return skip_rest("Skipped because 'Listing files' failed")
    if not matched:
        add("WARNING", f"No files under {where} yet; syncs load files once they arrive", {"files": 0})
        return skip_rest("No matching file to read yet")
    newest = max(matched, key=lambda f: (f.last_modified, f.key))
    count = f"{len(matched)}{'+' if len(matched) >= 1000 else ''}"
    add("PASSED", f"Found {count} files under {where}", {"files": len(matched), "example": newest.key})

    if time.monotonic() > deadline:
        return skip_rest(f"The setup tests ran out of time (timeout {options.timeout:.0f}s)")
    try:
        # The first MiB is enough to check the format; a cut last line is never parsed (10 rows).
        stream = _open(s3, parsed, newest.key, None if newest.key.endswith(".gz") else "bytes=0-1048575")
        try:
            sample = [row for row, _ in zip(_rows(stream, parsed, newest.key), range(10), strict=False)]
        finally:
            stream.close()
    except SourceError as exc:
        add("FAILED", str(exc), {"key": newest.key})
        return results
    details = {"key": newest.key, "rows": len(sample), "columns": sorted(sample[0])[:50] if sample else []}
    missing = [k for k in parsed.primary_key if sample and k not in sample[0]]
    if not sample:
        add("WARNING", f"'{newest.key}' has no rows", details)
    elif missing:
        add(
            "WARNING",
            f"'{newest.key}' has no column {', '.join(map(repr, missing))}: check primary_key",
            details,
        )
    else:
        add("PASSED", f"Read {len(sample)} rows from '{newest.key}' as {parsed.file_type}", details)
    return results


SERVICE = Service(
    name="s3",
    title="Amazon S3",
    description="CSV or JSON-lines files in an S3 bucket",
    config_model=S3Config,
    naming_keys=("schema", "table"),
    secret_paths=frozenset(secret_paths(S3Config)),
    tables=tables,
    extract=extract,
    setup_tests=setup_tests,
)
