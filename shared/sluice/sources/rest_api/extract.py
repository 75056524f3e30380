"""Reading a `rest_api` connection: tables page by page, incremental state and resuming.

Pages are yielded as they arrive, one `Upserts` per page, each followed by a `Checkpoint`.

Incremental tables (`cursor_field` set). The state keeps, per table, the largest cursor value of
the last complete read of that table; the next sync sends it as `cursor_param` and reads rows
with cursor >= that value. Rows equal to the saved value are read again (upserted by primary key,
so harmlessly) and never lost, however many rows share a value and wherever page boundaries fall.
The saved value only advances when a table has been read to its last page: an API that does not
return rows in cursor order could otherwise hide rows below a value saved mid-table.

Resuming. While a sync is under way the state also carries `run`: the tables finished in this
sync, and for the table in progress the cursor value its filter started from (`since`), the
largest value seen so far (`max`) and the position of the next page (a next URL, a cursor token,
a page number or an offset). A continuation resumes that table at that page with the same
filter, so a long historical sync finishes across several runs and no row is skipped; the
sync's last checkpoint drops `run`. Limits: offset and page positions assume the API's order is
stable between runs (true for the short gap before a continuation, as for any offset paging);
cursor values are compared as JSON values (ISO timestamps must share one format and zone); rows
changed during a sync in an API that does not sort by the cursor may get a value below the
saved one and wait for a historical sync.

State: {"tables": {"<table>": {"cursor": <value>}},
        "run": {"done": ["<table>", ...], "table": "<table>", "since": <value>, "max": <value>,
                "next": {"url" | "token" | "page" | "offset": ...}}}
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from pydantic import ValidationError

from sluice.contract import Checkpoint, Operation, TableSpec, Upserts
from sluice.sources.base import SourceError
from sluice.sources.rest_api.client import Client, session_for
from sluice.sources.rest_api.config import RestApiConfig, RestApiTable
from sluice.sources.rest_api.pagination import Page, PageRequest, Position, dig


def records_of(body: Any, table: RestApiTable) -> list[dict[str, Any]]:
    try:
        records = dig(body, table.records_path)
    except KeyError:
        found = sorted(body)[:10] if isinstance(body, dict) else type(body).__name__
        raise SourceError(
            f"records_path '{table.records_path}' was not found in the response for table '{table.name}' "
            f"(top-level keys: {found})"
        ) from None
    if not isinstance(records, list):
        where = f"records_path '{table.records_path}'" if table.records_path else "The response body"
        hint = f"; its keys are {sorted(records)[:10]}, set records_path" if isinstance(records, dict) else ""
        raise SourceError(
            f"{where} for table '{table.name}' is a {type(records).__name__}, not a list of rows{hint}"
        )
    if not all(type(row) is dict for row in records):
        raise SourceError(f"The rows of table '{table.name}' must be JSON objects")
    return records


def _max(values: list[Any]) -> Any:
    if not values:
        return None
    try:
        return max(values)
    except TypeError:  # mixed types: compare their JSON text rather than fail the sync
        return max(values, key=lambda v: json.dumps(v))


def _later(a: Any, b: Any) -> Any:
    """The larger of two cursor values (None is smaller than anything)."""
    if a is None:
        return b
    if b is None:
        return a
    return _max([a, b])


def table_url(config: RestApiConfig, table: RestApiTable) -> str:
    return config.base_url.rstrip("/") + "/" + table.path.lstrip("/")


def first_params(config: RestApiConfig, table: RestApiTable, since: Any) -> dict[str, str | int]:
    """The query of every request built from the table's URL: its params, the cursor filter and the
    page size."""
    params: dict[str, str | int] = dict(table.params)
    if since is not None and table.cursor_param:
        params[table.cursor_param] = since if isinstance(since, str) else json.dumps(since)
    return params | table.pagination.size_params(config.page_size)


def page_request(
    config: RestApiConfig, table: RestApiTable, since: Any, position: Position
) -> tuple[str, dict[str, str | int] | None]:
    """URL and query of the page at `position` (`{}`: the first page)."""
    request: PageRequest = table.pagination.request(position)
    if request.url is not None:
        return request.url, None  # a link the server gave carries its own query
    return table_url(config, table), first_params(config, table, since) | request.params


def _pages(
    client: Client, table: RestApiTable, since: Any, position: Position | None, deadline: float
) -> Iterator[tuple[list[dict[str, Any]], Position | None]]:
    """(rows, position of the next page or None on the last page), from `position` on."""
    position = dict(position or {})
    while True:
        url, params = page_request(client.config, table, since, position)
        reply = client.get(url, params, deadline)
        body = client.json(reply, table.name) if reply.content.strip() else None
        rows = records_of(body, table) if body is not None else []  # an empty body (204) has no rows
        following = table.pagination.following(position, Page(reply, body, rows))
        yield rows, following
        if following is None:
            return
        position = following


def _with_cursors(
    table: RestApiTable, rows: list[dict[str, Any]], since: Any
) -> tuple[list[dict[str, Any]], Any]:
    """The rows to keep and the largest cursor value among them."""
    field_name = table.cursor_field
    if not field_name:
        return rows, None
    if since is not None and not table.cursor_param:
        # The API cannot filter: drop rows older than the saved cursor ourselves (>= keeps ties).
        rows = [r for r in rows if (v := r.get(field_name)) is None or _later(v, since) == v]
    return rows, _max([v for r in rows if (v := r.get(field_name)) is not None])


# ---- the steps ------------------------------------------------------------------------------------


def tables(config: dict[str, Any]) -> list[TableSpec]:
    parsed = parse_config(config)
    return [TableSpec(t.name, tuple(t.primary_key)) for t in parsed.tables]


def columns(config: dict[str, Any], deadline: float) -> dict[str, set[str]]:
    """The columns of each table's first page (a schema reload: what the source shows now)."""
    parsed = parse_config(config)
    found: dict[str, set[str]] = {}
    with session_for(parsed) as session:
        client = Client(parsed, session)
        for table in parsed.tables:
            rows, _ = next(_pages(client, table, None, None, deadline))
            found[table.name] = set().union(*rows) if rows else set()
    return found


def parse_config(config: dict[str, Any]) -> RestApiConfig:
    try:
        return RestApiConfig.model_validate(config)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors()[:5])
        raise SourceError(f"The rest_api config is not valid ({fields})") from None


def extract(config: dict[str, Any], state: dict[str, Any], deadline: float) -> Iterator[Operation]:
    parsed = parse_config(config)
    saved: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (state.get("tables") or {}).items()}
    run: dict[str, Any] = dict(state.get("run") or {})
    done: list[str] = list(run.get("done") or [])
    with session_for(parsed) as session:
        client = Client(parsed, session)
        for table in parsed.tables:
            if table.name in done:
                continue
            resuming = run.get("table") == table.name
            since = run.get("since") if resuming else saved.get(table.name, {}).get("cursor")
            high = run.get("max") if resuming else None
            position = run.get("next") if resuming else None
            for rows, following in _pages(client, table, since, position, deadline):
                kept, page_max = _with_cursors(table, rows, since)
                high = _later(high, page_max)
                if kept:
                    yield Upserts(table.name, kept)
                if following is not None:
                    progress = {
                        "done": done,
                        "table": table.name,
                        "since": since,
                        "max": high,
                        "next": following,
                    }
                    yield Checkpoint({"tables": saved, "run": progress})
            if table.cursor_field:
                cursor = _later(since, high)
                # A new dict: the checkpoints already yielded must not change under the engine.
                saved = {**saved, table.name: {"cursor": cursor} if cursor is not None else {}}
            done = [*done, table.name]
            yield Checkpoint({"tables": saved, "run": {"done": done}})
            run = {}
    yield Checkpoint({"tables": saved})
