"""Setup tests of both built-in services, against real local servers (HTTP, TLS) and moto."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.resources import LocalResources
from local.sample_api import SampleApi, example_config
from sluice.connections.model import SetupTestResult
from sluice.sources import rest_api
from sluice.sources import s3 as s3_source
from sluice.sources.base import SetupTestOptions
from tests.support.loopback import loopback_allowed
from tests.support.tls import self_signed

TITLES = ["Resolving host", "Connecting", "Authenticating", "Fetching items"]


@pytest.fixture(autouse=True)
def _loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from loopback_allowed(monkeypatch)


def statuses(results: list[SetupTestResult]) -> list[tuple[str, str]]:
    return [(r.title, r.status) for r in results]


def by_title(results: list[SetupTestResult]) -> dict[str, SetupTestResult]:
    return {r.title: r for r in results}


def test_a_working_api_passes_every_test() -> None:
    with SampleApi(rows=30, token="t0k3n") as api:
        results = rest_api.setup_tests(example_config(api), SetupTestOptions())
    assert statuses(results) == [(t, "PASSED") for t in TITLES]
    fetched = by_title(results)["Fetching items"]
    assert fetched.details["rows"] > 0 and "updated_at" in fetched.details["fields"]
    assert by_title(results)["Resolving host"].details == {"host": "127.0.0.1", "address": "127.0.0.1"}


def test_bad_credentials_fail_authenticating_and_skip_the_rest() -> None:
    with SampleApi(rows=3, basic=("ann", "right")) as api:
        config = example_config(api)
        config["auth"]["password"] = "wrong-password"
        results = rest_api.setup_tests(config, SetupTestOptions())
    assert statuses(results) == [
        ("Resolving host", "PASSED"),
        ("Connecting", "PASSED"),
        ("Authenticating", "FAILED"),
        ("Fetching items", "SKIPPED"),
    ]
    failed = by_title(results)["Authenticating"]
    assert "HTTP 401" in failed.message and "auth.password" in failed.message
    assert "wrong-password" not in failed.message


def test_a_self_signed_certificate_fails_and_names_trust_certificates(tmp_path: Path) -> None:
    cert = self_signed(tmp_path)
    with SampleApi(rows=3, certfile=cert.cert, keyfile=cert.key) as api:
        results = rest_api.setup_tests(example_config(api), SetupTestOptions())
    connecting = by_title(results)["Connecting"]
    assert connecting.status == "FAILED"
    assert "trust_certificates" in connecting.message
    # What approving it takes: its hash and the certificate itself.
    assert connecting.details == {
        "certificate_sha256": cert.fingerprint,
        "hash": cert.hash,
        "encoded_cert": cert.encoded,
    }
    assert cert.hash in connecting.message
    assert [r.status for r in results[2:]] == ["SKIPPED", "SKIPPED"]


def test_a_self_signed_certificate_is_accepted_with_trust_certificates(tmp_path: Path) -> None:
    cert = self_signed(tmp_path)
    with SampleApi(rows=3, certfile=cert.cert, keyfile=cert.key, token="t") as api:
        results = rest_api.setup_tests(example_config(api), SetupTestOptions(trust_certificates=True))
    assert statuses(results) == [
        ("Resolving host", "PASSED"),
        ("Connecting", "WARNING"),
        ("Authenticating", "PASSED"),
        ("Fetching items", "PASSED"),
    ]
    connecting = by_title(results)["Connecting"]
    assert connecting.details["certificate_sha256"] == cert.fingerprint
    assert cert.fingerprint in connecting.message


def test_a_closed_port_fails_connecting() -> None:
    with SampleApi(rows=1) as api:
        config = example_config(api)
    results = rest_api.setup_tests(config, SetupTestOptions())
    assert statuses(results)[:2] == [("Resolving host", "PASSED"), ("Connecting", "FAILED")]
    assert "refused the connection" in results[1].message
    assert [r.status for r in results[2:]] == ["SKIPPED", "SKIPPED"]


@pytest.mark.parametrize("url", ["http://169.254.169.254", "http://10.0.0.1:8080", "https://[fd00::5]"])
def test_private_and_metadata_addresses_fail_resolving(url: str) -> None:
    config = {
        "schema": "s",
        "base_url": url,
        "tables": [{"name": "items", "path": "/x", "primary_key": ["id"]}],
    }
    results = rest_api.setup_tests(config, SetupTestOptions())
    assert results[0].status == "FAILED" and "public internet" in results[0].message
    assert [r.status for r in results[1:]] == ["SKIPPED"] * 3
    assert "Skipped because 'Resolving host' failed" in results[1].message


def test_each_table_is_fetched_on_its_own() -> None:
    with SampleApi(rows=5) as api:
        config = example_config(api, "cursor")
        good = config["tables"][0]
        config["tables"] = [
            good,
            dict(good, name="wrong_path", records_path="rows"),
            dict(good, name="no_key", primary_key=["sku"]),
            dict(good, name="missing", path="/nothing/here"),
        ]
        results = rest_api.setup_tests(config, SetupTestOptions())
    found = by_title(results)
    assert found["Fetching items"].status == "PASSED"
    assert (
        found["Fetching wrong_path"].status == "FAILED"
        and "records_path 'rows'" in found["Fetching wrong_path"].message
    )
    assert found["Fetching no_key"].status == "WARNING" and "'sku'" in found["Fetching no_key"].message
    assert found["Fetching missing"].status == "FAILED" and "404" in found["Fetching missing"].message


def test_a_server_that_never_answers_is_bounded_by_the_timeout() -> None:
    # Accepts connections (the kernel's backlog) and never answers a byte.
    silent = socket.socket()
    try:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        config = {
            "schema": "s",
            "base_url": f"http://127.0.0.1:{port}",
            "tables": [{"name": "items", "path": "/x", "primary_key": ["id"]}],
        }
        started = time.monotonic()
        results = rest_api.setup_tests(config, SetupTestOptions(timeout=2))
        elapsed = time.monotonic() - started
    finally:
        silent.close()
    # Bounded by options.timeout (2 s), not by the 60-second read timeout of a sync.
    assert elapsed < 10
    assert statuses(results)[:3] == [
        ("Resolving host", "PASSED"),
        ("Connecting", "PASSED"),
        ("Authenticating", "FAILED"),
    ]
    assert "Timeout" in results[2].message


# ---- s3 -----------------------------------------------------------------------------------------

BUCKET = "setup-test-files"
S3_TITLES = ["Accessing bucket", "Listing files", "Reading a file"]


@pytest.fixture
def s3(aws: LocalResources) -> Any:
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    return client


def s3_config(**overrides: Any) -> dict[str, Any]:
    return {"schema": "f", "table": "t", "bucket": BUCKET, "prefix": "in/", "primary_key": ["id"]} | overrides


def test_s3_with_a_readable_file_passes(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="in/a.csv", Body=b"id,name\n1,x\n2,y\n")
    results = s3_source.setup_tests(s3_config(pattern=r"\.csv$"), SetupTestOptions())
    assert statuses(results) == [(t, "PASSED") for t in S3_TITLES]
    assert results[2].details == {"key": "in/a.csv", "rows": 2, "columns": ["id", "name"]}


def test_s3_with_no_matching_file_warns_and_skips_reading(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="in/a.txt", Body=b"id\n1\n")
    results = s3_source.setup_tests(s3_config(pattern=r"\.csv$"), SetupTestOptions())
    assert statuses(results) == [
        ("Accessing bucket", "PASSED"),
        ("Listing files", "WARNING"),
        ("Reading a file", "SKIPPED"),
    ]


def test_s3_missing_bucket_fails_and_skips_the_rest(s3: Any) -> None:
    results = s3_source.setup_tests(s3_config(bucket="not-a-bucket-of-ours"), SetupTestOptions())
    assert statuses(results) == [
        ("Accessing bucket", "FAILED"),
        ("Listing files", "SKIPPED"),
        ("Reading a file", "SKIPPED"),
    ]
    assert "does not exist" in results[0].message


def test_s3_unparseable_file_fails_reading(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="in/a.jsonl", Body=b"not json\n")
    results = s3_source.setup_tests(s3_config(file_type="jsonl"), SetupTestOptions())
    assert results[2].status == "FAILED" and "not valid JSON" in results[2].message


def test_s3_file_without_the_primary_key_column_warns(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="in/a.csv", Body=b"sku,name\n1,x\n")
    results = s3_source.setup_tests(s3_config(), SetupTestOptions())
    assert results[2].status == "WARNING" and "'id'" in results[2].message
