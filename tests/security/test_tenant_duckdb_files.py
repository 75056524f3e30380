"""Issue 9, item 1: a tenant's `duckdb` destination file lives in its own account's data folder, and
two groups never share one. The attack, end to end through the handlers on moto with real DuckDB files:
account B names account A's file and syncs a connection with A's schema name."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from local.sample_api import SampleApi
from tests.support.api_events import Account, call, make_group
from tests.support.syncing import (
    duckdb_file,
    make_group_with_duckdb,
    make_rest_connection,
    run_worker,
    sample_api_config,
    sync_event,
)

A = Account("acct_alice", "user_alice")
B = Account("acct_bob", "user_bob")


def names_in(path: Path) -> dict[int, str]:
    with duckdb.connect(str(path), read_only=True) as db:
        return dict(db.execute("SELECT id, name FROM shop.items ORDER BY id").fetchall())


def sync(group_id: str, api: SampleApi, account: Account) -> str:
    created = make_rest_connection(group_id, sample_api_config(api.url), account=account)
    event = sync_event(created["id"])
    event["detail"]["account_id"] = account.account_id
    return str(run_worker(event)["status"])


def create_duckdb(group_id: str, path: str, account: Account):
    return call(
        "create_destination",
        body={"group_id": group_id, "service": "duckdb", "config": {"path": path}},
        account=account,
    )


@pytest.fixture
def api():
    with SampleApi(rows=3) as server:
        yield server


@pytest.fixture
def alice_file(aws, api) -> Path:
    """Account A's default file, synced once: row 1 is "Item 1"."""
    group_id = make_group_with_duckdb("default.duckdb", account=A)
    assert sync(group_id, api, A) == "SUCCESSFUL"
    path = duckdb_file("default.duckdb", account=A)
    assert names_in(path)[1] == "Item 1"
    api.update([1])  # what B syncs next differs from what A holds
    return path


def test_the_same_relative_path_is_another_file_for_another_account(alice_file: Path, api) -> None:
    group_id = make_group_with_duckdb("default.duckdb", account=B)

    assert sync(group_id, api, B) == "SUCCESSFUL"

    assert names_in(alice_file)[1] == "Item 1"  # A's row is A's
    bob_file = duckdb_file("default.duckdb", account=B)
    assert bob_file != alice_file and names_in(bob_file)[1] == "Item 1 v2"


@pytest.mark.parametrize(
    "path",
    [
        "ABSOLUTE",  # A's file by its absolute path
        "../acct_alice/default.duckdb",
        "sub/../../acct_alice/default.duckdb",
        "./default.duckdb",
        "~/default.duckdb",
        "C:\\data\\default.duckdb",
        "a//b.duckdb",
        ":memory:",
    ],
)
def test_a_path_that_could_leave_the_account_folder_is_refused(alice_file: Path, path: str) -> None:
    group_id = make_group("bobs", account=B)
    given = str(alice_file) if path == "ABSOLUTE" else path

    reply = create_duckdb(group_id, given, B)

    assert reply.status == 400, reply.body
    assert reply.body["code"] == "InvalidInput"
    assert "relative path inside the account's data folder" in reply.body["message"]
    assert call("get_destination", path=f"/v1/destinations/{group_id}", account=B).status == 404


def test_a_symlink_out_of_the_account_folder_is_not_followed(alice_file: Path, api) -> None:
    group_id = make_group_with_duckdb("link.duckdb", account=B)
    link = duckdb_file("link.duckdb", account=B)
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(alice_file)  # made by someone with access to the data folder, not through the API

    event_status = sync(group_id, api, B)

    assert event_status == "FAILURE_WITH_TASK"
    assert names_in(alice_file)[1] == "Item 1"


def test_an_account_folder_that_is_a_symlink_is_not_followed(alice_file: Path, api) -> None:
    bob_folder = duckdb_file("x", account=B).parent
    bob_folder.symlink_to(alice_file.parent, target_is_directory=True)
    group_id = make_group_with_duckdb("default.duckdb", account=B)

    assert sync(group_id, api, B) == "FAILURE_WITH_TASK"
    assert names_in(alice_file)[1] == "Item 1"


@pytest.mark.parametrize("second", ["default.duckdb", "Default.DuckDB", "sub/../default.duckdb"])
def test_two_groups_of_one_account_never_share_a_file(aws, second: str) -> None:
    first = make_group_with_duckdb("default.duckdb", account=A)
    other = make_group("second", account=A)

    reply = create_duckdb(other, second, A)

    if ".." in second:
        assert reply.status == 400  # refused before it could name the same file
    else:
        assert reply.status == 409, reply.body
        assert reply.body["message"] == (
            f"Another group of this account already writes to the duckdb file '{second}'"
        )
    assert call("get_destination", path=f"/v1/destinations/{other}", account=A).status == 404
    # The first group's destination is untouched, and another account may use the same name.
    assert call("get_destination", path=f"/v1/destinations/{first}", account=A).status == 200
    assert create_duckdb(make_group("bobs", account=B), "default.duckdb", B).status == 201


def test_a_group_whose_destination_exists_claims_no_second_file(aws) -> None:
    group_id = make_group_with_duckdb("one.duckdb", account=A)
    assert create_duckdb(group_id, "two.duckdb", A).status == 409
    # "two.duckdb" was not claimed by the refused request: another group may have it.
    assert create_duckdb(make_group("other", account=A), "two.duckdb", A).status == 201
