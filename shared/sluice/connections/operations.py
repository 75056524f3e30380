"""Connection operations: create, get, list, update, delete, with Fivetran's rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from sluice.api.caller import Caller
from sluice.api.request_models import ConnectionSettings, CreateConnectionRequest, UpdateConnectionRequest
from sluice.api.validation import check_item_size, parse
from sluice.config_secrets import merge_config, seal_config, secret_box
from sluice.connections.model import Connection, response_data
from sluice.connections.setup_tests import run_tests, test_and_record, with_results
from sluice.errors import GroupNotFound, InvalidInput
from sluice.events import publish
from sluice.ids import new_id
from sluice.scheduler.data_delay import connection_update_state
from sluice.scheduler.grid import (
    connection_next_sync_at,
    cron_problem,
    next_resync_at,
    schedule_problem,
    schedule_sync_frequency,
)
from sluice.sources import get_service
from sluice.sources.base import Service, SetupTestOptions
from sluice.storage.store import Store, connection_item
from sluice.storage.sync_store import SyncStore
from sluice.sync.events import SyncRequest, request_sync
from sluice.sync.runs import DELETED, end_stopped_run
from sluice.tenant_roles import with_tenant_account_id
from sluice.timestamps import utc_now

# Request fields that are actions, not attributes: they are never stored.
_ACTION_FIELDS = frozenset({"run_setup_tests", "trust_certificates", "trust_fingerprints", "config", "auth"})
# Setup tests run inside the API call: keep them well inside API Gateway's 29-second limit.
SETUP_TESTS_TIMEOUT = 20.0
# Changing any of these moves the connection on the sync grid at once.
_SCHEDULE_FIELDS = frozenset({"sync_frequency", "daily_sync_time", "schedule_type", "schedule", "paused"})


def as_response(connection: Connection) -> dict[str, Any]:
    now = utc_now()
    return response_data(
        connection,
        get_service(connection.service).naming_keys,
        update_state=connection_update_state(connection, now),
        now=now,
    )


def _given(request: ConnectionSettings) -> dict[str, Any]:
    """Fields the request sets, nested objects as plain dicts; an explicit null means "not set"."""
    given = {k: getattr(request, k) for k in request.model_fields_set if getattr(request, k) is not None}
    return {k: v.model_dump(exclude_none=True) if isinstance(v, BaseModel) else v for k, v in given.items()}


def _with_schedule(settings: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
    """The settings a request makes, with the flexible schedule's rules applied. A `schedule` takes
    precedence: it sets `schedule_type` (manual for MANUAL, else auto), `sync_frequency` and
    `daily_sync_time` as Fivetran shows them. Without one, a new `sync_frequency` or `daily_sync_time`
    (or `schedule_type: auto` over a MANUAL schedule) returns the connection to the frequency grid."""
    schedule = settings.get("schedule")
    if schedule is None:
        back_to_auto = (
            settings.get("schedule_type") == "auto" and (current or {}).get("schedule_type") == "MANUAL"
        )
        if current and ({"sync_frequency", "daily_sync_time"} & set(settings) or back_to_auto):
            return {**settings, "schedule": None}
        return settings
    problem = schedule_problem(schedule)
    if problem is not None:
        field, message = problem
        raise InvalidInput(f"Field '{field}' {message}")
    kind = schedule["schedule_type"]
    derived: dict[str, Any] = {"schedule_type": "manual" if kind == "MANUAL" else "auto"}
    if kind != "MANUAL":
        derived["sync_frequency"] = schedule_sync_frequency(schedule)
        derived["daily_sync_time"] = schedule.get("time_of_day")
    return {**settings, **derived}


def _with_resync_schedule(
    settings: dict[str, Any], service: Service, config: dict[str, Any]
) -> dict[str, Any]:
    """Ours: a `resync_schedule` is checked (its cron, the tables of its scope) and sets when the first
    re-sync is due; `{}` removes it."""
    wanted = settings.get("resync_schedule")
    if wanted is None:
        return settings
    if not wanted.get("cron"):
        if wanted.get("scope"):
            raise InvalidInput("Field 'resync_schedule.cron' is required")
        return {**settings, "resync_schedule": None, "next_resync_at": None}
    problem = cron_problem(str(wanted["cron"]))
    if problem:
        raise InvalidInput(f"Field 'resync_schedule.cron' {problem}")
    known = {table.name for table in service.tables(config)}
    for schema_name, tables in (wanted.get("scope") or {}).items():
        unknown = [t for t in tables if t not in known]
        if not tables or unknown:
            raise InvalidInput(f"Unknown table '{(unknown or [''])[0]}' in schema '{schema_name}'")
    return {**settings, "next_resync_at": next_resync_at(wanted, utc_now())}


def _check_rules(connection: Connection) -> None:
    """Rules that span fields; shared by create and update."""
    if connection.networking_method == "PrivateLink" and not connection.private_link_id:
        raise InvalidInput("Field 'private_link_id' is required when networking_method is PrivateLink")
    if connection.networking_method == "ProxyAgent" and not connection.proxy_agent_id:
        raise InvalidInput("Field 'proxy_agent_id' is required when networking_method is ProxyAgent")
    if connection.data_delay_sensitivity == "CUSTOM" and connection.data_delay_threshold <= 0:
        raise InvalidInput(
            "Field 'data_delay_threshold' must be greater than 0 when data_delay_sensitivity is CUSTOM"
        )


def _validated_config(
    service: Service, config: dict[str, Any], account_id: str, store: Store
) -> dict[str, Any]:
    for key in service.naming_keys:
        if config.get(key) in (None, ""):
            raise InvalidInput(f"Field '{key}' is required")
    config = with_tenant_account_id(service.config_model, config, account_id)
    model = parse(service.config_model, config, prefix="config.")
    validated = model.model_dump(mode="json", by_alias=True)
    service.check_references(store, account_id, validated)
    return validated


def create(caller: Caller, request: CreateConnectionRequest, store: Store) -> Connection:
    if store.get_group(caller.account_id, request.group_id) is None:
        raise GroupNotFound(request.group_id)
    service = get_service(request.service)
    config = _validated_config(service, request.config or {}, caller.account_id, store)
    not_attributes = _ACTION_FIELDS | {"group_id", "service", "connect_card_config"}
    settings = _with_schedule({k: v for k, v in _given(request).items() if k not in not_attributes}, None)
    settings = _with_resync_schedule(settings, service, config)
    connection_id = new_id()
    masked, secrets = seal_config(
        connection_id, config, service.secret_paths, {}, secret_box(), auth=request.auth
    )
    connection = Connection(
        id=connection_id,
        account_id=caller.account_id,
        group_id=request.group_id,
        service=service.name,
        schema=service.schema_name(config),
        connected_by=caller.user_id,
        created_at=utc_now(),
        config=masked,
        secrets=secrets,
        **settings,
    )
    _check_rules(connection)
    if request.run_setup_tests is not False:
        # Before the one write, so that a create is saved whole (with its results) or not at all.
        # The plain config is in hand: the tests need no decryption here.
        results = run_tests(service.name, config, _test_options(request))
        connection = with_results(connection, results, utc_now())
    _check_size(connection)
    store.create_connection(connection)
    publish("Connection Created", _event_detail(connection))
    return connection


def _test_options(request: ConnectionSettings) -> SetupTestOptions:
    return SetupTestOptions(
        trust_certificates=bool(request.trust_certificates),
        trust_fingerprints=bool(request.trust_fingerprints),
        timeout=SETUP_TESTS_TIMEOUT,
    )


def get(caller: Caller, connection_id: str, store: Store) -> Connection:
    return store.get_connection(caller.account_id, connection_id)


@dataclass(frozen=True)
class ConnectionPage:
    items: list[Connection]
    next_cursor: str | None


def list_page(
    caller: Caller, group_id: str | None, schema: str | None, cursor: str | None, limit: int, store: Store
) -> ConnectionPage:
    if group_id is not None and store.get_group(caller.account_id, group_id) is None:
        raise GroupNotFound(group_id)
    items, next_cursor = store.list_connections(caller.account_id, group_id, schema, cursor, limit)
    return ConnectionPage(items, next_cursor)


def _apply_update(connection: Connection, request: UpdateConnectionRequest, store: Store) -> Connection:
    service = get_service(connection.service)
    given = _given(request)
    changes = _with_schedule({k: v for k, v in given.items() if k not in _ACTION_FIELDS}, connection.schedule)
    if request.config is not None:
        for key in service.naming_keys:
            if key in request.config and request.config[key] != connection.config.get(key):
                raise InvalidInput(f"Field '{key}' can't be changed")
        config = _validated_config(
            service, merge_config(connection.config, request.config), connection.account_id, store
        )
        masked, secrets = seal_config(
            connection.id,
            config,
            service.secret_paths,
            connection.secrets,
            secret_box(),
            auth=request.auth,
            previous=connection.config,
            destinations=service.secret_destinations,
        )
        changes.update(config=masked, secrets=secrets)
    elif request.auth is not None:
        _, secrets = seal_config(
            connection.id,
            connection.config,
            service.secret_paths,
            connection.secrets,
            secret_box(),
            auth=request.auth,
        )
        changes["secrets"] = secrets
    if request.paused is False and connection.resync_pending:
        changes["resync_pending"] = False  # the resync asked for while paused starts now
    changes = _with_resync_schedule(changes, service, changes.get("config", connection.config))
    updated = connection.model_copy(update=changes)
    if _SCHEDULE_FIELDS & set(changes):
        updated = updated.model_copy(update={"next_sync_at": connection_next_sync_at(updated, utc_now())})
    # model_copy skips validation: re-validate so the stored item always satisfies the model.
    updated = Connection.model_validate(updated.model_dump(by_alias=True))
    _check_rules(updated)
    _check_size(updated)
    return updated


def _check_size(connection: Connection) -> None:
    """The connection's item, as storage writes it, fits in DynamoDB (before anything is written)."""
    check_item_size(connection_item(connection), "The connection")


def update(caller: Caller, connection_id: str, request: UpdateConnectionRequest, store: Store) -> Connection:
    given = _given(request)
    if given and set(given) <= {"run_setup_tests", "trust_certificates", "trust_fingerprints"}:
        raise InvalidInput("Use POST /v1/connections/{id}/test to run setup tests")
    current, written = store.modify_connection(
        caller.account_id, connection_id, lambda read: _apply_update(read, request, store)
    )
    assert written is not None  # _apply_update always returns the connection to write
    saved = written
    if _retest_wanted(request):
        saved = test_and_record(
            store, caller.account_id, saved.id, _test_options(request), secret_box().decrypt
        )
    publish("Connection Updated", {**_event_detail(saved), "was_paused": current.paused})
    if current.resync_pending and not saved.resync_pending:
        request_sync(SyncRequest(saved.account_id, saved.id, reason="unpause", historical=True))
    return saved


def _retest_wanted(request: UpdateConnectionRequest) -> bool:
    """Setup tests run on update when asked for, or by default when what they test changed."""
    if request.run_setup_tests is not None:
        return request.run_setup_tests
    return request.config is not None or request.auth is not None or request.networking_method is not None


def delete(caller: Caller, connection_id: str, store: Store) -> None:
    connection = store.get_connection(caller.account_id, connection_id)
    now = utc_now()
    if connection.active_sync_id is not None:
        # A running sync cannot end its own run once the connection is gone: end it here, once.
        end_stopped_run(SyncStore(store), connection, connection.active_sync_id, DELETED, now)
    store.delete_connection(connection, now)
    publish("Connection Deleted", {**_event_detail(connection), "connection": None})


def _event_detail(connection: Connection) -> dict[str, Any]:
    return {
        "account_id": connection.account_id,
        "connection_id": connection.id,
        "group_id": connection.group_id,
        "connection": as_response(connection),
    }
