"""The rest_api source against a real local HTTP server: pagination, incremental state, retries, errors."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

import pytest

from local.sample_api import STYLES, SampleApi, example_config
from sluice.contract import Checkpoint, Operation, TableSpec, Upserts
from sluice.sources import rest_api
from sluice.sources.base import SourceAuthError, SourceError, SourceRateLimited
from sluice.sources.rest_api import client as rest_api_client
from tests.support.loopback import loopback_allowed

KEYSET = ("next_link", "link_header", "cursor")  # positions that survive changes between runs


@pytest.fixture(autouse=True)
def _loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from loopback_allowed(monkeypatch)


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Backoff and Retry-After waits, recorded instead of slept."""
    seen: list[float] = []
    monkeypatch.setattr(rest_api_client, "_sleep", seen.append)
    return seen


def config_for(api: SampleApi, style: str, page_size: int = 20, **table: Any) -> dict[str, Any]:
    config = example_config(api, style)
    config["page_size"] = page_size
    if style in KEYSET or style == "none":
        # These styles have no page-size parameter of their own; the API takes `limit`.
        config["tables"][0]["params"] = {"limit": str(page_size)}
    config["tables"][0].update(table)
    return config


def run(config: dict[str, Any], state: dict[str, Any] | None = None, seconds: float = 60) -> list[Operation]:
    return list(rest_api.extract(config, state or {}, time.monotonic() + seconds))


def ids_of(ops: list[Operation]) -> list[int]:
    return [row["id"] for op in ops if isinstance(op, Upserts) for row in op.rows]


def final_state(ops: list[Operation]) -> dict[str, Any]:
    last = ops[-1]
    assert isinstance(last, Checkpoint)
    return last.state


@pytest.mark.parametrize("style", STYLES)
def test_every_pagination_style_reads_every_row_once_a_page_per_batch(style: str) -> None:
    with SampleApi(rows=257, ties=7) as api:
        ops = run(config_for(api, style))
    assert ids_of(ops) == sorted(ids_of(ops)) or style == "none"
    assert sorted(ids_of(ops)) == list(range(1, 258))
    batches = [op for op in ops if isinstance(op, Upserts)]
    assert len(batches) == (1 if style == "none" else 13)  # 12 pages of 20 and one of 17
    # A checkpoint follows every batch, so a stop anywhere loses at most one page of work.
    for index, op in enumerate(ops):
        if isinstance(op, Upserts):
            assert isinstance(ops[index + 1], Checkpoint)
    assert final_state(ops) == {"tables": {"items": {"cursor": api.data.row(257)["updated_at"]}}}


@pytest.mark.parametrize("style", ["page", "offset"])
def test_page_and_offset_paging_survive_a_server_capping_the_page_size(style: str) -> None:
    with SampleApi(rows=100, max_page_size=7) as api:
        ops = run(config_for(api, style, page_size=20))
    assert sorted(ids_of(ops)) == list(range(1, 101))


def test_relative_and_absolute_next_links_are_both_followed() -> None:
    with SampleApi(rows=45) as api:
        relative = ids_of(run(config_for(api, "next_link")))
        absolute = ids_of(run(config_for(api, "next_link", params={"limit": "20", "absolute": "1"})))
        assert any(r.startswith("/next_link/items?") and "after=" in r for r in api.requests)
    assert relative == absolute == list(range(1, 46))


def test_auth_headers_and_table_params_are_sent() -> None:
    with SampleApi(rows=5, api_key=("X-Key", "k-123")) as api:
        config = config_for(api, "cursor", params={"limit": "2", "category": "x"})
        config["headers"] = {"X-Tenant": "acme"}
        assert sorted(ids_of(run(config))) == [1, 2, 3, 4, 5]
        assert all("category=x" in r for r in api.requests)
    with SampleApi(rows=5, basic=("ann", "pw")) as api:
        assert len(ids_of(run(config_for(api, "offset")))) == 5


def test_second_sync_reads_only_new_and_changed_rows() -> None:
    with SampleApi(rows=500, ties=5) as api:
        config = config_for(api, "next_link")
        first = run(config)
        saved = final_state(first)["tables"]["items"]["cursor"]
        first_requests = len(api.requests)
        changed_at = api.update([3, 250])
        added = api.add(4)
        second = run(config, final_state(first))
        rows = {row["id"]: row for op in second if isinstance(op, Upserts) for row in op.rows}
        # New and changed rows, plus the last tie group of the first sync (read again, >=).
        last_group = {i for i in range(1, 501) if api.data.row(i)["updated_at"] == saved}
        assert set(rows) == {3, 250, *added} | last_group
        assert rows[3]["version"] == 2 and rows[3]["updated_at"] == changed_at
        # Every request of the second sync filters on the saved value (next links carry it on).
        assert all(urlencode({"updated_since": saved}) in r for r in api.requests[first_requests:])
        assert final_state(second)["tables"]["items"]["cursor"] == api.data.row(added[0])["updated_at"]


def test_rows_sharing_the_saved_cursor_value_are_never_lost() -> None:
    # Twelve rows change at one instant; pages of 5 split them, and the next sync starts at that value.
    with SampleApi(rows=100, ties=7) as api:
        config = config_for(api, "cursor", page_size=5)
        state = final_state(run(config))
        api.update(range(40, 46))
        state = final_state(run(config, state))
        api.update(range(60, 66))
        rows = ids_of(run(config, state))
    assert set(range(60, 66)) <= set(rows)
    assert set(range(40, 46)) <= set(rows)  # the previous max group is re-read, not skipped


def test_cursor_without_a_query_parameter_filters_on_our_side() -> None:
    with SampleApi(rows=30, ties=3) as api:
        config = config_for(api, "offset", cursor_param=None)
        state = final_state(run(config))
        api.update([7])
        rows = ids_of(run(config, state))
    # Everything is fetched (the API cannot filter), but only rows at or past the cursor are loaded.
    assert sorted(rows) == [7, 28, 29, 30]


@pytest.mark.parametrize("style", [s for s in STYLES if s != "none"])
@pytest.mark.parametrize("stop_after", [1, 2, 5])
def test_a_sync_stopped_at_a_checkpoint_resumes_where_it_stopped(style: str, stop_after: int) -> None:
    with SampleApi(rows=60, ties=7) as api:
        config = config_for(api, style, page_size=5)
        before, state = first_run_until(config, stop_after)
        requests_before = len(api.requests)
        after = run(config, state)
        # The continuation starts at the next page instead of the first.
        assert len(api.requests) - requests_before <= 13 - stop_after
        full = run(config)
    assert sorted(before + ids_of(after)) == list(range(1, 61))
    assert final_state(after) == final_state(full)


def first_run_until(config: dict[str, Any], checkpoints: int) -> tuple[list[int], dict[str, Any]]:
    """Rows read before the n-th checkpoint, and that checkpoint's state (the engine stops there)."""
    ids: list[int] = []
    seen = 0
    generator = rest_api.extract(config, {}, time.monotonic() + 60)
    for op in generator:
        if isinstance(op, Upserts):
            ids += [row["id"] for row in op.rows]
        elif isinstance(op, Checkpoint):
            seen += 1
            if seen == checkpoints:
                generator.close()
                return ids, json.loads(json.dumps(op.state))  # as stored: plain JSON
    raise AssertionError("fewer checkpoints than expected")


@pytest.mark.parametrize("style", KEYSET)
def test_rows_changed_between_a_stop_and_its_continuation_are_read(style: str) -> None:
    with SampleApi(rows=60, ties=7) as api:
        config = config_for(api, style, page_size=5)
        before, state = first_run_until(config, 3)
        # A row already read and one in the tie group straddling the stop both change.
        api.update([2, before[-1]])
        after = run(config, state)
        nxt = run(config, final_state(after))
    assert set(before) | set(ids_of(after)) == set(range(1, 61))
    assert {2, before[-1]} <= set(ids_of(after))
    assert {2, before[-1]} <= set(ids_of(nxt))  # the changed rows hold the new max: re-read, never lost


def test_a_continuation_skips_tables_finished_before_the_stop() -> None:
    with SampleApi(rows=10) as api:
        config = config_for(api, "offset", page_size=50)
        second = dict(config["tables"][0], name="again", path="/page/items", pagination={"type": "page"})
        config["tables"].append(second)
        ops = run(config)
        after_first = next(
            op.state
            for op in ops
            if isinstance(op, Checkpoint) and op.state.get("run", {}).get("done") == ["items"]
        )
        api.requests.clear()
        resumed = run(config, after_first)
    assert all(r.startswith("/page/items") for r in api.requests)
    assert {op.table for op in resumed if isinstance(op, Upserts)} == {"again"}
    assert final_state(resumed) == final_state(ops)
    assert "run" not in final_state(ops)


def test_server_errors_are_retried_with_backoff(waits: list[float]) -> None:
    with SampleApi(rows=30) as api:
        api.fail_next(3, status=503)
        assert sorted(ids_of(run(config_for(api, "cursor")))) == list(range(1, 31))
    assert len(waits) == 3 and waits[0] <= waits[2]


def test_server_errors_that_persist_fail_the_sync(waits: list[float]) -> None:
    with SampleApi(rows=30) as api:
        api.fail_next(50, status=502)
        with pytest.raises(SourceError, match=r"HTTP 502.*gave up after 5 attempts"):
            run(config_for(api, "cursor"))
    assert len(waits) == 4


def test_a_short_rate_limit_is_waited_out(waits: list[float]) -> None:
    with SampleApi(rows=30) as api:
        api.fail_next(2, status=429, retry_after=2)
        assert len(ids_of(run(config_for(api, "page")))) == 30
    assert waits == [2.0, 2.0]


@pytest.mark.parametrize("header", ["seconds", "http-date"])
def test_a_rate_limit_beyond_the_deadline_reschedules(header: str, waits: list[float]) -> None:
    wait = timedelta(hours=1)
    value = "3600" if header == "seconds" else format_datetime(datetime.now(UTC) + wait, usegmt=True)
    with SampleApi(rows=30) as api:
        api.fail_next(1, status=429, retry_after=value)
        with pytest.raises(SourceRateLimited) as caught:
            run(config_for(api, "page"), seconds=120)
    assert abs((caught.value.retry_at - (datetime.now(UTC) + wait)).total_seconds()) < 5
    assert waits == []


def test_rejected_credentials_raise_an_auth_error_without_the_secret() -> None:
    with SampleApi(rows=5, token="right-token") as api:
        config = config_for(api, "cursor")
        config["auth"] = {"type": "bearer", "token": "wrong-token"}
        with pytest.raises(SourceAuthError, match="401") as caught:
            run(config)
    assert "wrong-token" not in str(caught.value)


def test_an_unreachable_server_fails_after_retries(waits: list[float]) -> None:
    with SampleApi(rows=1) as api:
        config = config_for(api, "none")
    # The server has stopped: its port now refuses connections.
    with pytest.raises(SourceError, match="Could not reach"):
        run(config)
    assert len(waits) == 4


def test_a_records_path_that_finds_no_list_is_a_clear_error() -> None:
    with SampleApi(rows=3) as api:
        with pytest.raises(SourceError, match=r"records_path 'rows' was not found.*'data'"):
            run(config_for(api, "cursor", records_path="rows"))
        with pytest.raises(SourceError, match=r"not a list of rows.*set records_path"):
            run(config_for(api, "cursor", records_path=""))


def test_tables_come_from_the_config_without_network() -> None:
    config = {
        "schema": "shop",
        "base_url": "https://api.example.invalid",
        "tables": [{"name": "orders", "path": "/o", "primary_key": ["id", "line"]}],
    }
    assert rest_api.tables(config) == [TableSpec("orders", ("id", "line"))]
    assert rest_api.SERVICE.extract is rest_api.extract


@pytest.mark.parametrize("style", ["next_link", "link_header", "cursor"])
def test_size_param_asks_keyset_styles_for_page_size_rows(style: str) -> None:
    # Throughput is measured by `make bench`; here only that the page size reaches the API.
    with SampleApi(rows=30) as api:
        config = example_config(api, style)
        config["page_size"] = 7
        config["tables"][0]["pagination"]["size_param"] = "limit"
        ops = run(config)
        batches = [op for op in ops if isinstance(op, Upserts)]
        assert [len(b.rows) for b in batches[:4]] == [7, 7, 7, 7]
        assert sorted(ids_of(ops)) == list(range(1, 31))
        assert "limit=7" in api.requests[0]


def test_basic_credentials_are_scrubbed_in_their_encoded_form_too() -> None:
    import base64

    parsed = rest_api.RestApiConfig.model_validate(
        {
            "schema": "s",
            "base_url": "https://api.example.com",
            "auth": {"type": "basic", "username": "user", "password": "pw-secret"},
            "tables": [{"name": "t", "path": "/t", "primary_key": ["id"]}],
        }
    )
    encoded = base64.b64encode(b"user:pw-secret").decode()
    assert set(rest_api.secret_values(parsed)) >= {encoded, "pw-secret"}
