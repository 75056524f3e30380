"""Builds API Gateway events from the checked-in samples under events/ and invokes handlers in-process."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.functions import load_module
from local.lambda_context import LocalContext

EVENTS = Path(__file__).resolve().parents[2] / "events"
_UNSET: Any = object()


@dataclass(frozen=True)
class Account:
    account_id: str = "acct_example"
    user_id: str = "user_example"


DEFAULT = Account()


def sample_event(op: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{op}.json").read_text())


def api_event(
    op: str,
    *,
    path: str | None = None,
    body: Any = _UNSET,
    raw_body: str | None = _UNSET,
    query: dict[str, str] | None = _UNSET,
    account: Account = DEFAULT,
    headers: dict[str, str] | None = None,
    method: str | None = None,
) -> dict[str, Any]:
    event = copy.deepcopy(sample_event(op))
    if path is not None:
        event["path"] = path
    if method is not None:  # a function that serves several methods (the sample holds one)
        event["httpMethod"] = event["requestContext"]["httpMethod"] = method
    if body is not _UNSET:
        event["body"] = json.dumps(body)
    if raw_body is not _UNSET:
        event["body"] = raw_body
    if query is not _UNSET:
        event["queryStringParameters"] = query
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None
    if headers is not None:
        event["headers"] = headers
    event["requestContext"]["authorizer"] = {
        "account_id": account.account_id,
        "user_id": account.user_id,
        "principalId": account.user_id,
    }
    return event


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def data(self) -> Any:
        return self.body["data"]


def invoke(op: str, event: dict[str, Any]) -> Reply:
    module = load_module(f"functions/{op}")
    response = module.lambda_handler(event, LocalContext(function_name=op))
    return Reply(
        status=response["statusCode"],
        body=json.loads(response["body"]),
        headers={
            **(response.get("headers") or {}),
            **{k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()},
        },
    )


def call(op: str, **kwargs: Any) -> Reply:
    return invoke(op, api_event(op, **kwargs))


def make_group(name: str = "analytics", account: Account = DEFAULT) -> str:
    reply = call("create_group", body={"name": name}, account=account)
    assert reply.status == 201, reply.body
    return str(reply.data["id"])


def rest_api_config(schema: str = "shop", **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "schema": schema,
        "base_url": "https://api.example.com",
        "auth": {"type": "bearer", "token": "tok-secret-1"},
        "tables": [{"name": "orders", "path": "/v1/orders", "primary_key": ["id"]}],
    }
    config.update(overrides)
    return config


def make_connection(group_id: str, account: Account = DEFAULT, **body: Any) -> dict[str, Any]:
    # Setup tests need a reachable source; tests of them ask for them explicitly.
    payload = {
        "group_id": group_id,
        "service": "rest_api",
        "config": rest_api_config(),
        "run_setup_tests": False,
        **body,
    }
    reply = call("create_connection", body=payload, account=account)
    assert reply.status == 201, reply.body
    return dict(reply.data)


def connection_path(connection_id: str, alias: bool = False) -> str:
    return f"/v1/{'connectors' if alias else 'connections'}/{connection_id}"
