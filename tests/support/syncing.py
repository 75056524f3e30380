"""Helpers for sync tests: a duckdb destination, a rest_api connection to a SampleApi, the worker."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

from local.functions import load_module
from local.lambda_context import LocalContext
from local.sample_api import config_for
from tests.support.api_events import DEFAULT, EVENTS, Account, call, make_group


def make_group_with_duckdb(
    file: str = "lake.duckdb", account: Account = DEFAULT, name: str = "analytics"
) -> str:
    """A group whose duckdb destination is `file` (relative: it lands in the account's data folder)."""
    group_id = make_group(name, account=account)
    reply = call(
        "create_destination",
        body={"group_id": group_id, "service": "duckdb", "config": {"path": file}},
        account=account,
    )
    assert reply.status == 201, reply.body
    return group_id


def duckdb_file(file: str = "lake.duckdb", account: Account = DEFAULT) -> Path:
    """Where the duckdb destination `file` of `account` lives (`<data folder>/<account id>/<file>`)."""
    from sluice.destinations.duckdb import account_dir

    return account_dir(account.account_id) / file


def sample_api_config(
    url: str, token: str | None = None, style: str = "next_link", **table: Any
) -> dict[str, Any]:
    """A config for a `local.sample_api` server at `url` (a wrong `token` makes a failing one)."""
    auth = {"type": "bearer", "token": token} if token else None
    config = config_for(url, style, auth, schema="shop", page_size=table.pop("page_size", 50))
    config["tables"][0].update(table)
    return config


def make_rest_connection(
    group_id: str, config: dict[str, Any], account: Account = DEFAULT, **body: Any
) -> dict[str, Any]:
    reply = call(
        "create_connection",
        body={
            "group_id": group_id,
            "service": "rest_api",
            "config": config,
            "run_setup_tests": False,
            **body,
        },
        account=account,
    )
    assert reply.status == 201, reply.body
    return dict(reply.data)


def sync_event(connection_id: str, event_id: str | None = None, **detail: Any) -> dict[str, Any]:
    event = copy.deepcopy(json.loads((EVENTS / "sync_worker.json").read_text()))
    event["id"] = event_id or str(uuid.uuid4())
    event["detail"].update({"connection_id": connection_id, **detail})
    return event


def run_worker(event: dict[str, Any], timeout_seconds: float = 900) -> dict[str, Any]:
    module = load_module("functions/sync_worker")
    return dict(
        module.lambda_handler(
            event, LocalContext(function_name="sync_worker", timeout_seconds=timeout_seconds)
        )
    )


def duckdb_rows(path: Path, table: str = "shop.items") -> dict[Any, dict[str, Any]]:
    import duckdb

    with duckdb.connect(str(path), read_only=True) as db:
        cursor = db.execute(f"SELECT * FROM {table}")
        columns = [c[0] for c in cursor.description]
        return {row[columns.index("id")]: dict(zip(columns, row, strict=True)) for row in cursor.fetchall()}


def get_connection(connection_id: str) -> dict[str, Any]:
    reply = call("get_connection", path=f"/v1/connections/{connection_id}")
    assert reply.status == 200, reply.body
    return dict(reply.data)
