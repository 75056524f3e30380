"""Groups and their destinations: the minimum the Fivetran clients need."""

from __future__ import annotations

from typing import Any

from sluice.api.caller import Caller
from sluice.api.request_models import (
    CreateDestinationRequest,
    CreateGroupRequest,
    UpdateDestinationRequest,
    UpdateGroupRequest,
)
from sluice.api.validation import parse
from sluice.destinations import DESTINATION_CONFIGS, DuckDbConfig, duckdb_file_id
from sluice.destinations import stored as stored_destinations
from sluice.errors import Conflict, DestinationNotFound, GroupNotFound, InvalidInput
from sluice.ids import new_id
from sluice.storage.store import Store
from sluice.tenant_roles import with_tenant_account_id
from sluice.timestamps import format_timestamp, utc_now


def group_out(item: dict[str, Any]) -> dict[str, Any]:
    return {"id": item["id"], "name": item["name"], "created_at": item["created_at"]}


def create_group(caller: Caller, request: CreateGroupRequest, store: Store) -> dict[str, Any]:
    item = store.create_group(new_id(), caller.account_id, request.name, format_timestamp(utc_now()) or "")
    return group_out(item)


def get_group(caller: Caller, group_id: str, store: Store) -> dict[str, Any]:
    item = store.get_group(caller.account_id, group_id)
    if item is None:
        raise GroupNotFound(group_id)
    return group_out(item)


def list_groups(caller: Caller, cursor: str | None, limit: int, store: Store) -> dict[str, Any]:
    page = store.list_groups(caller.account_id, cursor, limit)
    return {
        "items": [group_out(i) for i in page.items],
        "next_cursor": page.next_cursor,
        "nextCursor": page.next_cursor,
    }


def update_group(caller: Caller, group_id: str, request: UpdateGroupRequest, store: Store) -> dict[str, Any]:
    if request.name is None:
        return get_group(caller, group_id, store)
    item = store.update_group(caller.account_id, group_id, {"name": request.name})
    if item is None:
        raise GroupNotFound(group_id)
    return group_out(item)


def _duckdb_file(caller: Caller, destination: dict[str, Any] | None) -> tuple[str, str] | None:
    """(account id, file id) of the duckdb file claim a destination holds (none for other services)."""
    if not destination or destination.get("service") != "duckdb":
        return None
    return (caller.account_id, duckdb_file_id(str(destination["config"]["path"])))


def delete_group(caller: Caller, group_id: str, store: Store) -> None:
    """A group goes with its destination, and only once it holds no connection (409 before)."""
    get_group(caller, group_id, store)
    if store.group_holds_connections(caller.account_id, group_id):
        raise Conflict(f"Group '{group_id}' still holds connections: delete them first")
    destination = store.get_destination(caller.account_id, group_id)
    store.delete_group(group_id, _duckdb_file(caller, destination))


def destination_out(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": item["group_id"],
        "group_id": item["group_id"],
        "service": item["service"],
        "region": item["region"],
        "time_zone_offset": item["time_zone_offset"],
        "setup_status": item["setup_status"],
        **({"setup_tests": item["setup_tests"]} if "setup_tests" in item else {}),
        "config": item["config"],  # secrets masked (stored_destinations.seal)
    }


def create_destination(caller: Caller, request: CreateDestinationRequest, store: Store) -> dict[str, Any]:
    get_group(caller, request.group_id, store)
    model = DESTINATION_CONFIGS[request.service]
    given = with_tenant_account_id(model, request.config or {}, caller.account_id)
    config = parse(model, given, prefix="config.")
    masked, secrets = stored_destinations.seal(request.group_id, request.service, config)
    results = stored_destinations.run_setup_tests(config) if request.run_setup_tests is not False else []
    fields = {
        "service": request.service,
        "region": request.region or "AWS_US_EAST_1",
        "time_zone_offset": request.time_zone_offset or "0",
        "setup_status": stored_destinations.setup_status(results),
        **({"setup_tests": [r.model_dump(mode="json") for r in results]} if results else {}),
        "config": masked,
        **({"secrets": secrets} if secrets else {}),
        "created_at": format_timestamp(utc_now()),
    }
    # A duckdb file is the account's, claimed by this group alone: another group naming it is refused.
    file = (duckdb_file_id(config.path), config.path) if isinstance(config, DuckDbConfig) else None
    return destination_out(store.create_destination(request.group_id, caller.account_id, fields, file))


def get_destination(caller: Caller, destination_id: str, store: Store) -> dict[str, Any]:
    item = store.get_destination(caller.account_id, destination_id)
    if item is None:
        raise DestinationNotFound(destination_id)
    return destination_out(item)


def update_destination(
    caller: Caller, destination_id: str, request: UpdateDestinationRequest, store: Store
) -> dict[str, Any]:
    current = store.get_destination(caller.account_id, destination_id)
    if current is None:
        raise DestinationNotFound(destination_id)
    changes: dict[str, Any] = {}
    if request.config is not None:
        model = DESTINATION_CONFIGS[current["service"]]
        merged = {k: v for k, v in {**current["config"], **request.config}.items() if v is not None}
        config = parse(model, with_tenant_account_id(model, merged, caller.account_id), prefix="config.")
        if isinstance(config, DuckDbConfig) and config.path != current["config"].get("path"):
            # The file is claimed by this group; a new file is a new destination.
            raise InvalidInput("Field 'config.path' can't be changed")
        masked, secrets = stored_destinations.reseal(current, config)
        changes["config"] = masked
        changes["secrets"] = secrets
    if request.region is not None:
        changes["region"] = request.region
    if request.time_zone_offset is not None:
        changes["time_zone_offset"] = request.time_zone_offset
    item = store.update_destination(caller.account_id, destination_id, changes) if changes else current
    if item is None:
        raise DestinationNotFound(destination_id)
    if request.run_setup_tests:
        return test_destination(caller, destination_id, store)
    return destination_out(item)


def delete_destination(caller: Caller, destination_id: str, store: Store) -> None:
    """A destination goes only while its group holds no connection: their syncs write to it (409)."""
    destination = store.get_destination(caller.account_id, destination_id)
    if destination is None:
        raise DestinationNotFound(destination_id)
    if store.group_holds_connections(caller.account_id, destination_id):
        raise Conflict(
            f"Destination '{destination_id}' is used by connections of its group: delete them first"
        )
    store.delete_destination(destination_id, _duckdb_file(caller, destination))


def test_destination(caller: Caller, destination_id: str, store: Store) -> dict[str, Any]:
    """Run the destination's setup tests, record `setup_status`, and return it with `setup_tests`."""
    item = store.get_destination(caller.account_id, destination_id)
    if item is None:
        raise DestinationNotFound(destination_id)
    from sluice.config_secrets import secret_box

    config = stored_destinations.revealed_config(item, secret_box().decrypt)
    results = _destination_tests(item["service"], config, caller.account_id)
    passed = all(r["status"] in ("PASSED", "SKIPPED", "WARNING") for r in results)
    status = "connected" if passed else ("broken" if item["setup_status"] == "connected" else "incomplete")
    updated = store.update_destination(caller.account_id, destination_id, {"setup_status": status})
    return {**destination_out(updated or item), "setup_tests": results}


def _destination_tests(service: str, config: dict[str, Any], account_id: str) -> list[dict[str, Any]]:
    def result(title: str, problem: str | None) -> dict[str, Any]:
        return {
            "title": title,
            "status": "FAILED" if problem else "PASSED",
            "message": problem or "",
            "details": None,
        }

    if service == "s3":
        return [result("Connecting to the bucket", _s3_problem(str(config["bucket"])))]
    if service == "duckdb":
        return [
            result("Opening the database file's folder", _duckdb_problem(str(config["path"]), account_id))
        ]
    if service == "postgres":
        return [result("Connecting to the database", _postgres_problem(config))]
    return [
        {"title": "Setup tests", "status": "SKIPPED", "message": f"None for '{service}'", "details": None}
    ]


def _postgres_problem(config: dict[str, Any]) -> str | None:
    from sluice.destinations import DestinationError, PostgresDestinationConfig
    from sluice.destinations.postgres import connect

    try:
        connect(PostgresDestinationConfig.model_validate(config)).close()
    except DestinationError as exc:
        return exc.message
    return None


def _s3_problem(bucket: str) -> str | None:
    from botocore.exceptions import BotoCoreError, ClientError

    from sluice.aws import client

    try:
        client("s3").head_bucket(Bucket=bucket)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        return f"Bucket '{bucket}' can't be reached ({code or 'error'})"
    except BotoCoreError as exc:
        return f"Bucket '{bucket}' can't be reached ({type(exc).__name__})"
    return None


def _duckdb_problem(path: str, account_id: str) -> str | None:
    import os
    from pathlib import Path

    from sluice.destinations import DestinationError
    from sluice.destinations.duckdb import resolve_path

    try:
        folder = Path(resolve_path(path, account_id)).parent  # creates the folder when it can
    except DestinationError as exc:
        return exc.message
    except OSError as exc:
        return f"The folder of '{path}' can't be created ({exc.strerror})"
    return None if os.access(folder, os.W_OK) else f"Folder '{folder}' is not writable"
