"""A group's hashing salt is a secret: sealed with KMS, bound to its group, and never in a response, a
log line or an event; and the schema config routes are bounded like every other write."""

from __future__ import annotations

import pytest

from local.sample_api import SampleApi
from tests.support.api_events import call
from tests.support.syncing import (
    duckdb_file,
    make_group_with_duckdb,
    make_rest_connection,
    run_worker,
    sample_api_config,
    sync_event,
)

SCHEMAS = "update_connection_schemas"


def test_the_salt_appears_in_no_response_log_or_event(aws, bus, caplog, capsys) -> None:
    from sluice.config_secrets import secret_box
    from sluice.schema_config.operations import SALT_FIELD, SALT_SCOPE
    from sluice.storage.schema_store import SchemaConfigStore
    from sluice.storage.store import get_store

    with SampleApi(rows=5, token="tok") as api:
        group = make_group_with_duckdb(duckdb_file("salt.duckdb").name)
        connection = make_rest_connection(group, sample_api_config(api.url, token="tok"))
        body = {"schemas": {"shop": {"tables": {"items": {"columns": {"name": {"hashed": True}}}}}}}
        replies = [
            call(SCHEMAS, path=f"/v1/connections/{connection['id']}/schemas", method="POST", body=body)
        ]
        assert run_worker(sync_event(connection["id"]))["status"] == "SUCCESSFUL"
        replies.append(call("get_connection_schemas", path=f"/v1/connections/{connection['id']}/schemas"))
        replies.append(call("get_group", path=f"/v1/groups/{group}"))
        replies.append(call("get_destination", path=f"/v1/destinations/{group}"))
    sealed = SchemaConfigStore(get_store()).group_salt(group)
    assert sealed is not None
    salt = secret_box().decrypt(group, {SALT_FIELD: sealed}, SALT_SCOPE)[SALT_FIELD]
    seen = [repr(r.body) for r in replies] + [repr(e) for e in bus.drain()]
    seen += [r.getMessage() + repr(r.__dict__) for r in caplog.records]
    printed = capsys.readouterr()
    seen += [printed.out, printed.err]
    assert all(salt not in text and sealed not in text for text in seen)


def test_a_salt_copied_to_another_group_does_not_decrypt(aws) -> None:
    from sluice.config_secrets import secret_box
    from sluice.schema_config.operations import SALT_FIELD, SALT_SCOPE
    from sluice.storage.schema_store import SchemaConfigStore
    from sluice.storage.store import get_store

    group = make_group_with_duckdb(duckdb_file("salt2.duckdb").name, name="one")
    other = make_group_with_duckdb(duckdb_file("salt3.duckdb").name, name="two")
    connection = make_rest_connection(group, sample_api_config("http://127.0.0.1:9"))
    body = {"schemas": {"shop": {"tables": {"items": {"columns": {"name": {"hashed": True}}}}}}}
    assert (
        call(SCHEMAS, path=f"/v1/connections/{connection['id']}/schemas", method="POST", body=body).status
        == 200
    )
    sealed = SchemaConfigStore(get_store()).group_salt(group)
    assert sealed is not None
    with pytest.raises(Exception, match="InvalidCiphertext"):
        secret_box().decrypt(other, {SALT_FIELD: sealed}, SALT_SCOPE)


def test_a_schema_config_past_its_item_is_a_413_and_nothing_is_written(aws) -> None:
    from sluice.storage.store import get_store
    from sluice.storage.sync_store import SyncStore

    group = make_group_with_duckdb(duckdb_file("big.duckdb").name)
    connection = make_rest_connection(group, sample_api_config("http://127.0.0.1:9"))
    names = {f"column_{i:05d}_" + "x" * 200 for i in range(2000)}
    SyncStore(get_store()).add_columns(connection["id"], {"items": names})
    body = {"schemas": {"shop": {"tables": {"items": {"columns": {n: {"enabled": False} for n in names}}}}}}
    reply = call(SCHEMAS, path=f"/v1/connections/{connection['id']}/schemas", method="PATCH", body=body)
    assert reply.status == 413 and reply.body["code"] == "PayloadTooLarge", reply.body
    got = call("get_connection_schemas", path=f"/v1/connections/{connection['id']}/schemas")
    assert got.status == 200
    columns = got.data["schemas"]["shop"]["tables"]["items"]["columns"]
    assert all(c["enabled"] for c in columns.values())
