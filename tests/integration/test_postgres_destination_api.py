"""POST /v1/destinations with the `postgres` service, through the handlers on moto and a real PostgreSQL
server: the setup tests run on create and are reported (`setup_status`, `setup_tests`), through the
outbound guard's address rules; the sync worker writes with the unsealed password."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api_events import call, make_group
from tests.support.loopback import set_loopback
from tests.support.postgres import SUPERUSER, SUPERUSER_PASSWORD, PostgresServer

TITLES = ["Connecting to the database", "Creating a schema", "Writing a probe table"]


def destination_body(group_id: str, config: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"group_id": group_id, "service": "postgres", "config": config, **extra}


def pg_config(server: PostgresServer, database: str, **extra: Any) -> dict[str, Any]:
    return {
        "host": server.host,
        "port": server.port,
        "database": database,
        "user": SUPERUSER,
        "password": SUPERUSER_PASSWORD,
        **extra,
    }


def probe_schemas(server: PostgresServer, database: str) -> list[str]:
    with server.connect(database) as con:
        rows = con.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'sluice_setup_test_%'")
        return [row[0] for row in rows.fetchall()]


def test_create_runs_the_setup_tests_and_reports_them(
    aws: Any, pg_server: PostgresServer, pg_database: str
) -> None:
    group_id = make_group()
    reply = call("create_destination", body=destination_body(group_id, pg_config(pg_server, pg_database)))
    assert reply.status == 201, reply.body
    assert reply.data["service"] == "postgres"
    assert reply.data["setup_status"] == "connected"
    assert [(t["title"], t["status"]) for t in reply.data["setup_tests"]] == [(t, "PASSED") for t in TITLES]
    assert reply.data["config"]["password"] == "******"
    assert reply.data["config"]["host"] == pg_server.host
    assert probe_schemas(pg_server, pg_database) == []  # the probe schema is dropped again
    got = call("get_destination", path=f"/v1/destinations/{group_id}")
    assert got.status == 200
    assert got.data == reply.data


def test_a_wrong_password_leaves_the_destination_incomplete_and_says_why(
    aws: Any, pg_server: PostgresServer, pg_database: str
) -> None:
    group_id = make_group()
    config = pg_config(pg_server, pg_database, password="not-the-password")
    reply = call("create_destination", body=destination_body(group_id, config))
    assert reply.status == 201, reply.body
    assert reply.data["setup_status"] == "incomplete"
    first, *rest = reply.data["setup_tests"]
    assert first["status"] == "FAILED"
    assert "password authentication failed" in first["message"]
    assert [t["status"] for t in rest] == ["SKIPPED", "SKIPPED"]


def test_a_user_without_create_on_the_database_fails_the_schema_test(
    aws: Any, pg_server: PostgresServer, pg_database: str
) -> None:
    reader = f"reader_{pg_database}"  # roles are the server's: one per test
    pg_server.create_role(pg_database, reader, "reader-pw")
    pg_server.execute(pg_database, f'REVOKE CREATE ON DATABASE "{pg_database}" FROM PUBLIC')
    group_id = make_group()
    config = pg_config(pg_server, pg_database, user=reader, password="reader-pw")
    reply = call("create_destination", body=destination_body(group_id, config))
    assert reply.data["setup_status"] == "incomplete"
    assert [t["status"] for t in reply.data["setup_tests"]] == ["PASSED", "FAILED", "SKIPPED"]
    assert "GRANT CREATE ON DATABASE" in reply.data["setup_tests"][1]["message"]


@pytest.mark.parametrize(
    ("host", "why"), [("127.0.0.1", "a loopback address"), ("10.1.2.3", "a private network address")]
)
def test_the_outbound_guard_refuses_addresses_inside(
    aws: Any,
    pg_server: PostgresServer,
    pg_database: str,
    monkeypatch: pytest.MonkeyPatch,
    host: str,
    why: str,
) -> None:
    set_loopback(monkeypatch, False)
    group_id = make_group()
    config = pg_config(pg_server, pg_database, host=host)
    reply = call("create_destination", body=destination_body(group_id, config))
    assert reply.status == 201, reply.body
    assert reply.data["setup_status"] == "incomplete"
    first = reply.data["setup_tests"][0]
    assert first["status"] == "FAILED"
    assert "Refused to connect" in first["message"] and why in first["message"]


def test_run_setup_tests_false_stores_without_testing(aws: Any, pg_server: PostgresServer) -> None:
    group_id = make_group()
    config = pg_config(pg_server, "no_such_database")
    reply = call("create_destination", body=destination_body(group_id, config, run_setup_tests=False))
    assert reply.status == 201, reply.body
    assert reply.data["setup_status"] == "connected"
    assert "setup_tests" not in reply.data


def test_bad_postgres_configs_are_refused(aws: Any, pg_server: PostgresServer, pg_database: str) -> None:
    group_id = make_group()
    masked = call(
        "create_destination",
        body=destination_body(group_id, pg_config(pg_server, pg_database, password="******")),
    )
    assert masked.status == 400
    assert masked.body == {"code": "InvalidInput", "message": "Field 'config.password' is required"}
    config = pg_config(pg_server, pg_database)
    del config["password"]
    missing = call("create_destination", body=destination_body(group_id, config))
    assert missing.body == {"code": "InvalidInput", "message": "Field 'config.password' is required"}
    bad_port = call(
        "create_destination", body=destination_body(group_id, {**config, "password": "x", "port": 0})
    )
    assert bad_port.status == 400 and bad_port.body["code"] == "InvalidInput"
    assert call("get_destination", path=f"/v1/destinations/{group_id}").status == 404  # nothing half-written
