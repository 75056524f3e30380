"""Groups and their destinations: the minimum the Fivetran clients need."""

from __future__ import annotations

from typing import Any

from sluice.api.caller import Caller
from sluice.api.request_models import CreateDestinationRequest, CreateGroupRequest
from sluice.api.validation import parse
from sluice.destinations import DESTINATION_CONFIGS, DuckDbConfig, duckdb_file_id
from sluice.destinations import stored as stored_destinations
from sluice.errors import DestinationNotFound, GroupNotFound
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
