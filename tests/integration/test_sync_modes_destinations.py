"""LIVE and HISTORY in the destinations that keep them (duckdb, postgres), written through the writer
contract the sync engine calls: versions, deletes, replays, and switching a table's mode."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sluice.contract import TableSpec
from sluice.destinations import open_destination
from tests.support.loopback import loopback_allowed
from tests.support.postgres import SUPERUSER, SUPERUSER_PASSWORD, PostgresServer

T0 = datetime(2026, 11, 1, tzinfo=UTC)
SOFT = TableSpec("users", ("id",))
HISTORY = replace(SOFT, sync_mode="HISTORY")
LIVE = replace(SOFT, sync_mode="LIVE")


@pytest.fixture(autouse=True)
def _loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from loopback_allowed(monkeypatch)


@pytest.fixture(params=["duckdb", "postgres"])
def dest(request: pytest.FixtureRequest, tmp_path, monkeypatch) -> Iterator[Any]:
    if request.param == "duckdb":
        from sluice.settings import get_settings

        monkeypatch.setenv("SLUICE_DATA_DIR", str(tmp_path))
        get_settings.cache_clear()
        destination = open_destination("duckdb", {"path": "modes.duckdb"}, "acct_example")
    else:
        server: PostgresServer = request.getfixturevalue("pg_server")
        database = request.getfixturevalue("pg_database")
        config = {
            "host": server.host,
            "port": server.port,
            "database": database,
            "user": SUPERUSER,
            "password": SUPERUSER_PASSWORD,
        }
        destination = open_destination("postgres", config, "acct_example")
    yield destination
    destination.close()


def rows(dest: Any, order: str) -> list[dict[str, Any]]:
    dest.flush()  # what the engine does before a checkpoint: staged batches land
    cursor = dest._connection().execute(f"SELECT * FROM crm.users ORDER BY {order}")
    names = [c[0] for c in cursor.description]  # DuckDB's tuples and psycopg's Column both index so
    return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


def versions(dest: Any) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {}
    for row in rows(dest, "id, _fivetran_start"):
        found.setdefault(row["id"], []).append(row)
    return found


def test_history_keeps_one_version_per_change_and_replays_add_none(dest) -> None:
    dest.upsert("crm", HISTORY, [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Bob"}], T0, "b1")
    dest.upsert("crm", HISTORY, [{"id": 1, "name": "Ada L."}], T0 + timedelta(hours=1), "b2")
    dest.upsert("crm", HISTORY, [{"id": 1, "name": "Ada L."}], T0 + timedelta(hours=2), "b2")  # a replay
    dest.delete("crm", HISTORY, [{"id": 2}], T0 + timedelta(hours=3), "b3")
    dest.delete("crm", HISTORY, [{"id": 2}], T0 + timedelta(hours=4), "b3")  # a replay
    dest.flush()
    found = versions(dest)
    assert [v["name"] for v in found[1]] == ["Ada", "Ada L."]
    old, current = found[1]
    assert old["_fivetran_active"] is False and current["_fivetran_active"] is True
    assert old["_fivetran_end"] == T0 + timedelta(hours=1) - timedelta(milliseconds=1)
    assert current["_fivetran_start"] == T0 + timedelta(hours=1)
    assert current["_fivetran_end"].year == 9999
    assert len(found[2]) == 1 and found[2][0]["_fivetran_active"] is False
    assert found[2][0]["_fivetran_end"] == T0 + timedelta(hours=3)
    assert "_fivetran_deleted" not in old


def test_live_removes_deleted_rows(dest) -> None:
    dest.upsert("crm", LIVE, [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Bob"}], T0, "b1")
    assert dest.delete("crm", LIVE, [{"id": 2}], T0, "b2") == 1
    assert dest.delete("crm", LIVE, [{"id": 2}], T0, "b2") == 0  # a replay
    assert [r["id"] for r in rows(dest, "id")] == [1]


def test_switching_modes_reshapes_the_table_both_ways(dest) -> None:
    dest.upsert("crm", SOFT, [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Bob"}], T0, "b1")
    dest.delete("crm", SOFT, [{"id": 2}], T0 + timedelta(minutes=1), "b2")
    dest.upsert("crm", HISTORY, [{"id": 1, "name": "Ada L."}], T0 + timedelta(hours=1), "b3")
    found = versions(dest)
    assert [(v["name"], v["_fivetran_active"]) for v in found[1]] == [("Ada", False), ("Ada L.", True)]
    assert [(v["name"], v["_fivetran_active"]) for v in found[2]] == [("Bob", False)]
    dest.upsert("crm", SOFT, [{"id": 3, "name": "Cy"}], T0 + timedelta(hours=2), "b4")
    back = {r["id"]: r for r in rows(dest, "id")}
    assert {i: (r["name"], r["_fivetran_deleted"]) for i, r in back.items()} == {
        1: ("Ada L.", False),
        2: ("Bob", True),
        3: ("Cy", False),
    }
    assert "_fivetran_start" not in back[1]


def test_a_dropped_column_leaves_the_table_and_a_repeat_is_harmless(dest) -> None:
    dest.upsert("crm", SOFT, [{"id": 1, "name": "Ada", "email": "a@example.com"}], T0, "b1")
    dest.drop_columns("crm", "users", ["email", "id"])  # a key column is never dropped
    dest.drop_columns("crm", "users", ["email"])
    dest.upsert("crm", SOFT, [{"id": 2, "name": "Bob"}], T0, "b2")
    assert [(r["id"], r["name"]) for r in rows(dest, "id")] == [(1, "Ada"), (2, "Bob")]
    assert "email" not in rows(dest, "id")[0]
