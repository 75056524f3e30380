"""connector_sdk syncs on moto: the test connectors, unchanged, through the sync worker into DuckDB."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from sluice.storage.sync_store import SyncStore
from tests.support.api_events import call
from tests.support.connector_sdk import (
    deploy,
    make_sdk_connection,
    offline_pip,
    upload,
    use_sdk_python,
    zip_connector,
)
from tests.support.syncing import duckdb_file, get_connection, make_group_with_duckdb, run_worker, sync_event


class Crash(BaseException):
    """Stands for the process dying: nothing in the engine catches it."""


@pytest.fixture
def lake(aws) -> Path:
    return duckdb_file("lake.duckdb")


@pytest.fixture
def group(aws, lake, monkeypatch) -> str:
    use_sdk_python(monkeypatch)
    return make_group_with_duckdb(lake.name)


def commit_every_checkpoint(monkeypatch) -> None:
    from sluice.settings import get_settings

    monkeypatch.setenv("SYNC_COMMIT_EVERY_SECONDS", "0")
    get_settings.cache_clear()


def rows(lake: Path, table: str, order: str = "id") -> list[dict]:
    with duckdb.connect(str(lake), read_only=True) as db:
        cursor = db.execute(f"SELECT * FROM shop.{table} ORDER BY {order}")
        columns = [c[0] for c in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def state(connection_id: str) -> dict:
    reply = call("get_connection_state", path=f"/v1/connections/{connection_id}/state")
    assert reply.status == 200, reply.body
    return dict(reply.data["state"])


def every_operation(group: str, total: int = 23, page: int = 5) -> dict:
    package = deploy("every_operation")
    return make_sdk_connection(group, package, {"rows": str(total), "page": str(page)})


def assert_every_operation_landed(lake: Path, total: int = 23) -> None:
    items = {r["id"]: r for r in rows(lake, "items")}
    assert set(items) == set(range(1, total + 1))
    assert items[1]["name"] == "renamed"
    assert items[2]["_fivetran_deleted"] is True
    assert items[7]["name"] == "item 7" and items[7]["price"] == 10.5 and items[7]["active"] is False
    assert all(r["_fivetran_deleted"] is False for n, r in items.items() if n != 2)
    events = rows(lake, "events", order="first")
    assert [e["first"] for e in events] == list(range(1, total + 1, 5))
    assert all(len(e["_fivetran_id"]) > 0 for e in events)


def test_every_operation_lands_and_the_state_is_the_last_checkpoint(group, lake) -> None:
    connection = every_operation(group)
    result = run_worker(sync_event(connection["id"]))
    assert result["status"] == "SUCCESSFUL", result
    assert_every_operation_landed(lake)
    assert state(connection["id"]) == {"next": 24}
    assert get_connection(connection["id"])["succeeded_at"] is not None


def test_the_connectors_log_lines_go_to_the_sync_workers_log(group, lake, caplog) -> None:
    connection = every_operation(group, total=3, page=3)
    assert run_worker(sync_event(connection["id"]))["status"] == "SUCCESSFUL"
    logged = {
        (r.levelname, r.getMessage()) for r in caplog.records if getattr(r, "source", None) == "connector_sdk"
    }
    assert ("INFO", "starting at 1 of 3") in logged
    assert ("WARNING", "finished with a warning") in logged


def test_a_partial_op_update_replaces_the_row_and_the_sync_says_so(group, lake, caplog) -> None:
    """Sluice has no partial update: the columns an op.update leaves out become null, and the sync
    logs a warning naming the table (once per sync)."""
    connection = every_operation(group, total=3, page=3)
    assert run_worker(sync_event(connection["id"]))["status"] == "SUCCESSFUL"
    third = {r["id"]: r for r in rows(lake, "items")}[3]
    assert third["price"] == 9.0 and third["name"] is None and third["active"] is None
    warned = [
        r.getMessage()
        for r in caplog.records
        if r.levelname == "WARNING" and getattr(r, "table", None) == "items" and "op.update" in r.getMessage()
    ]
    assert len(warned) == 1 and "become null" in warned[0]


def test_the_next_sync_starts_from_the_committed_state(group, lake) -> None:
    connection = every_operation(group)
    run_worker(sync_event(connection["id"]))
    path = f"/v1/connections/{connection['id']}"
    assert call("update_connection", path=path, body={"paused": True}).status == 200
    patched = call("update_connection_state", path=f"{path}/state", body={"state": {"next": 21}})
    assert patched.status == 200, patched.body
    assert call("update_connection", path=path, body={"paused": False}).status == 200
    result = run_worker(sync_event(connection["id"]))
    assert result["status"] == "SUCCESSFUL", result
    assert result["rows_upserted"] == 3 + 1 + 2  # items 21..23, one events row, the two updates


def test_a_resync_runs_the_connector_from_empty_state(group, lake) -> None:
    connection = make_sdk_connection(group, deploy("generator_style"))
    run_worker(sync_event(connection["id"]))
    incremental = run_worker(sync_event(connection["id"]))
    assert incremental["rows_upserted"] == 5 and state(connection["id"]) == {"next": 11}
    reply = call("resync_connection", path=f"/v1/connections/{connection['id']}/resync", body={})
    assert reply.status == 200, reply.body
    result = run_worker(sync_event(connection["id"], historical=True, reason="resync"))
    assert result["status"] == "SUCCESSFUL", result
    assert state(connection["id"]) == {"next": 6}  # it started again from {}
    assert len(rows(lake, "items")) == 10


def test_a_generator_style_connector_runs_unchanged(group, lake) -> None:
    connection = make_sdk_connection(group, deploy("generator_style"))
    assert run_worker(sync_event(connection["id"]))["status"] == "SUCCESSFUL"
    assert [r["name"] for r in rows(lake, "items")] == [f"item {n}" for n in range(1, 6)]
    assert state(connection["id"]) == {"next": 6}


def test_an_exception_fails_the_sync_with_its_message_and_no_later_checkpoint(
    group, lake, monkeypatch
) -> None:
    commit_every_checkpoint(monkeypatch)
    connection = make_sdk_connection(group, deploy("raises"))
    result = run_worker(sync_event(connection["id"]))
    assert result["status"] == "FAILURE_WITH_TASK"
    assert "the source API said no" in result["message"]
    assert "the source API refused the next page" in result["message"]  # the log.severe line
    failed = get_connection(connection["id"])
    assert failed["failed_at"] is not None and failed["succeeded_at"] is None
    # The checkpoint before the failure is committed; nothing after it is.
    assert state(connection["id"]) == {"next": 4}


def test_a_connector_that_never_checkpoints_lands_rows_keyed_by_fivetran_id(group, lake) -> None:
    connection = make_sdk_connection(group, deploy("never_checkpoints"))
    result = run_worker(sync_event(connection["id"]))
    assert result["status"] == "SUCCESSFUL", result
    landed = rows(lake, "readings", order="value")
    assert [r["value"] for r in landed] == list(range(10))
    assert len({r["_fivetran_id"] for r in landed}) == 10
    # Nothing was checkpointed, so no state was committed.
    reply = call("get_connection_state", path=f"/v1/connections/{connection['id']}/state")
    assert reply.status == 400 and reply.body["message"] == "The connection state doesn't exist"


def test_a_crash_before_a_checkpoint_commits_is_replayed_to_the_same_destination(
    group, lake, monkeypatch
) -> None:
    original = SyncStore.commit_checkpoint
    calls = {"n": 0}

    def crash_on_third(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise Crash()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SyncStore, "commit_checkpoint", crash_on_third)
    commit_every_checkpoint(monkeypatch)
    connection = every_operation(group)
    event = sync_event(connection["id"])
    with pytest.raises(Crash):
        run_worker(event)
    assert state(connection["id"]) == {"next": 11}
    result = run_worker(event)  # Lambda retries the same event
    assert result["status"] == "SUCCESSFUL", result
    assert_every_operation_landed(lake)
    assert state(connection["id"]) == {"next": 24}


def test_a_sync_out_of_time_continues_from_each_checkpoint(group, lake, monkeypatch) -> None:
    commit_every_checkpoint(monkeypatch)
    connection = every_operation(group)
    event = sync_event(connection["id"])
    runs = 0
    while runs < 20:
        runs += 1
        result = run_worker(event, timeout_seconds=0.01)
        if result["status"] != "CONTINUED":
            break
        sync_id = event["detail"].get("sync_id") or event["id"]
        event = sync_event(connection["id"], reason="continuation", sync_id=sync_id)
    assert result["status"] == "SUCCESSFUL", result
    assert runs > 2  # it really stopped at checkpoints on the way
    assert_every_operation_landed(lake)


def test_setup_tests_load_the_package_and_run_schema(group) -> None:
    connection = make_sdk_connection(group, deploy("every_operation"), {"rows": "1", "page": "1"})
    reply = call("test_connection", path=f"/v1/connections/{connection['id']}/test", body={})
    assert reply.status == 200, reply.body
    loaded, form = reply.data["setup_tests"]
    assert loaded["status"] == "PASSED" and "items, events" in loaded["message"]
    assert form["status"] == "SKIPPED"


@pytest.mark.parametrize(
    ("configuration", "expected"),
    [
        ({"api_token": "tok-1", "region": "us"}, [("PASSED", ""), ("PASSED", "")]),
        ({"region": "mars"}, [("FAILED", "api_token"), ("FAILED", "must start with tok-")]),
        (
            {"api_token": "nope", "region": "mars"},
            [("FAILED", "'region'"), ("FAILED", "must start with tok-")],
        ),
    ],
)
def test_setup_tests_check_the_configuration_against_the_form(group, configuration, expected) -> None:
    connection = make_sdk_connection(group, deploy("with_configuration_form"), configuration)
    reply = call("test_connection", path=f"/v1/connections/{connection['id']}/test", body={})
    assert reply.status == 200, reply.body
    loaded, *checks = reply.data["setup_tests"]
    assert loaded["status"] == "PASSED"
    assert [c["title"] for c in checks] == [
        "Checking the configuration against the form",
        "Checking the token",
    ]
    for check, (status, fragment) in zip(checks, expected, strict=True):
        assert check["status"] == status and fragment in check["message"], check


def test_setup_tests_fail_when_the_package_does_not_load(group) -> None:
    connection = make_sdk_connection(group, deploy("raises"))
    connection_path = f"/v1/connections/{connection['id']}"
    from sluice.aws import client
    from sluice.settings import get_settings

    # The stored object is tampered with: its SHA-256 no longer matches.
    key = f"packages/{connection['config']['package_id']}/code.zip"
    bucket = get_settings().packages_bucket
    stored = client("s3").get_object(Bucket=bucket, Key=key)
    client("s3").put_object(Bucket=bucket, Key=key, Body=b"PK tampered", Metadata=stored["Metadata"])
    reply = call("test_connection", path=f"{connection_path}/test", body={})
    [result] = reply.data["setup_tests"]
    assert result["status"] == "FAILED" and "integrity check" in result["message"]


def test_secrets_list_values_are_never_returned(group) -> None:
    connection = make_sdk_connection(group, deploy("generator_style"), {"api_token": "tok-very-secret"})
    assert connection["config"]["secrets_list"] == [{"key": "api_token", "value": "******"}]
    assert "tok-very-secret" not in str(get_connection(connection["id"]))


def test_requirements_are_resolved_at_deploy_and_imported_at_sync(group, lake, monkeypatch, tmp_path) -> None:
    offline_pip(monkeypatch, tmp_path / "wheels")
    package = deploy("with_requirement")
    # The sync runs no pip: from here on, nothing could be resolved.
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "nowhere"))
    connection = make_sdk_connection(group, package)
    result = run_worker(sync_event(connection["id"]))
    assert result["status"] == "SUCCESSFUL", result
    assert [r["text"] for r in rows(lake, "greetings")] == ["hello, sluice"]


def test_a_requirement_that_cannot_be_met_fails_the_deploy_with_pips_message(
    group, monkeypatch, tmp_path
) -> None:
    offline_pip(monkeypatch, tmp_path / "wheels")
    data = zip_connector("with_requirement")
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(buffer, "w") as target:
        for name in source.namelist():
            content = source.read(name)
            target.writestr(name, b"sluice-test-greeting==9.9\n" if name == "requirements.txt" else content)
    reply = upload(buffer.getvalue())
    assert reply.status == 400, reply.body
    assert "requirements.txt could not be resolved" in reply.body["message"]
    assert "sluice-test-greeting==9.9" in reply.body["message"]
    assert call("list_packages").data["items"] == []


def test_connector_code_sees_no_aws_credentials_or_sluice_settings(group, lake, monkeypatch) -> None:
    monkeypatch.setenv("AWS_SESSION_TOKEN", "the-worker-roles-token")
    connection = make_sdk_connection(group, deploy("reads_environment"))
    assert run_worker(sync_event(connection["id"]))["status"] == "SUCCESSFUL"
    names = {r["name"] for r in rows(lake, "variables", order="name")}
    assert "PATH" in names
    leaked = {
        n for n in names if n.startswith(("AWS_", "TABLE_", "KMS_", "PACKAGES_", "EVENT_BUS", "SLUICE_"))
    }
    assert leaked == set()


def _column_types(lake: Path, table: str) -> dict[str, str]:
    with duckdb.connect(str(lake), read_only=True) as db:
        found = db.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'shop' AND table_name = ?",
            [table],
        ).fetchall()
    return dict(found)


def test_types_declared_in_schema_are_the_destinations_column_types(group, lake) -> None:
    import datetime
    from decimal import Decimal

    connection = make_sdk_connection(group, deploy("typed_columns"))
    result = run_worker(sync_event(connection["id"]))
    assert result["status"] == "SUCCESSFUL", result
    types = _column_types(lake, "typed")
    assert {name: types[name] for name in ("id", "big", "ratio", "score", "flag", "code")} == {
        "id": "BIGINT",
        "big": "BIGINT",
        "ratio": "DOUBLE",
        "score": "DOUBLE",
        "flag": "BOOLEAN",
        "code": "VARCHAR",
    }
    assert types["day"] == "DATE"
    assert types["moment"] == "TIMESTAMP"
    assert types["instant"] == "TIMESTAMP WITH TIME ZONE"
    assert types["doc"] == "JSON"
    first, second = rows(lake, "typed")
    assert first["day"] == datetime.date(2024, 2, 29) and second["day"] == datetime.date(2024, 3, 1)
    assert first["moment"] == datetime.datetime(2024, 2, 29, 13, 14, 15)
    assert first["instant"].astimezone(datetime.UTC) == datetime.datetime(
        2024, 2, 29, 13, 14, 15, tzinfo=datetime.UTC
    )
    assert first["flag"] is True and second["flag"] is False
    assert first["code"] == "007"
    assert Decimal(str(first["amount"])) == Decimal("1234.50")


def test_declared_types_reach_the_destination_as_python_values(group) -> None:
    """The contract hands destinations Python values: each declared type arrives as its own."""
    import datetime
    import time
    from decimal import Decimal

    from sluice.contract import Upserts
    from sluice.sources.connector_sdk import SERVICE

    config = {"schema": "shop", "package_id": deploy("typed_columns"), "secrets_list": []}
    [batch] = [o for o in SERVICE.extract(config, {}, time.monotonic() + 60) if isinstance(o, Upserts)]
    first, second = batch.rows
    assert first == {
        "id": 1,
        "big": 9_000_000_000,
        "ratio": 0.5,
        "score": 2.25,
        "flag": True,
        "day": datetime.date(2024, 2, 29),
        "moment": datetime.datetime(2024, 2, 29, 13, 14, 15),
        "instant": datetime.datetime(2024, 2, 29, 13, 14, 15, tzinfo=datetime.UTC),
        "amount": Decimal("1234.50"),
        "doc": {"a": [1, 2]},
        "blob": b"\x00\x01binary",
        "code": "007",
    }
    assert type(first["flag"]) is bool and type(first["id"]) is int
    assert second["instant"] == datetime.datetime(2024, 3, 1, 0, 0, 1, tzinfo=datetime.UTC)
    assert second["amount"] == Decimal("10") and second["blob"] == b"" and second["doc"] == [{"b": None}]
