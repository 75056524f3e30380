"""Warm API call: GET /v1/connections/{id} through the get_connection handler, against the one DynamoDB
GetItem it needs made raw through boto3, both against the same moto server over real HTTP.

Both run in this process after warm-up, interleaved call by call so that drift hits both alike.
"""

from __future__ import annotations

import time
from typing import Any

from bench import moto_env
from bench.common import Figure, median, us

BUDGET = 1.5


def run(env: moto_env.MotoEnv, calls: int = 200, warmup: int = 30, out=print) -> list[Figure]:
    import boto3

    from local.lambda_context import LocalContext
    from sluice.settings import get_settings
    from sluice.storage.store import connection_key, to_dynamo

    group_id = moto_env.duckdb_group("warm.duckdb", "bench_warm")
    connection = moto_env.rest_connection(
        group_id,
        {
            "schema": "warm",
            "base_url": "https://api.example.com",
            "auth": {"type": "bearer", "token": "bench-secret"},
            "tables": [{"name": "orders", "path": "/orders", "primary_key": ["id"]}],
        },
    )
    event = moto_env.api_event("get_connection", path=f"/v1/connections/{connection['id']}")
    event["pathParameters"] = {"connection_id": connection["id"]}
    handler = moto_env.handler("get_connection")
    context = LocalContext(function_name="get_connection")

    ddb: Any = boto3.session.Session().client("dynamodb", region_name=get_settings().region)
    table_name = get_settings().table_name
    key = to_dynamo(connection_key(connection["id"]))

    def api_call() -> None:
        response = handler(event, context)
        assert response["statusCode"] == 200, response

    def raw_get() -> None:
        item = ddb.get_item(TableName=table_name, Key=key, ConsistentRead=True)
        assert "Item" in item

    for _ in range(warmup):
        api_call()
        raw_get()
    api_times: list[float] = []
    raw_times: list[float] = []
    for _ in range(calls):
        started = time.perf_counter()
        api_call()
        api_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        raw_get()
        raw_times.append(time.perf_counter() - started)
    api, raw = median(api_times), median(raw_times)
    figure = Figure(
        "warm GET /v1/connections/{id} vs raw GetItem",
        api / raw,
        BUDGET,
        detail=f"handler {us(api)} vs GetItem {us(raw)} (median of {calls} each, moto server)",
    )
    out(figure.line())
    return [figure]
