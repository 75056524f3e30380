"""A moto server on 127.0.0.1 with the template's resources, and a bench account seeded through the
real API handlers (in-process, as the local stack runs them)."""

from __future__ import annotations

import copy
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import ROOT

ACCOUNT = "acct_bench"
USER = "user_bench"


@dataclass
class MotoEnv:
    server: Any
    endpoint: str
    data_dir: Path

    def stop(self) -> None:
        self.server.stop()


def start(data_dir: Path) -> MotoEnv:
    """Start moto and point this process's boto3 (and Sluice's settings) at it."""
    from local.stack import prepare_environment, start_moto

    server, endpoint = start_moto()
    prepare_environment(endpoint, data_dir)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    return MotoEnv(server, endpoint, data_dir)


def api_event(op: str, path: str | None = None, body: Any = None) -> dict[str, Any]:
    event = copy.deepcopy(json.loads((ROOT / "events" / f"{op}.json").read_text()))
    if path is not None:
        event["path"] = path
        event["requestContext"]["path"] = f"/v1stage{path}"
    if body is not None:
        event["body"] = json.dumps(body)
    event["requestContext"]["authorizer"] = {"account_id": ACCOUNT, "user_id": USER, "principalId": USER}
    return event


def handler(op: str) -> Any:
    from local.functions import load_module

    return load_module(f"functions/{op}").lambda_handler


def invoke(op: str, event: dict[str, Any]) -> dict[str, Any]:
    from local.lambda_context import LocalContext

    response = handler(op)(event, LocalContext(function_name=op))
    body = json.loads(response["body"])
    if response["statusCode"] >= 300:
        raise RuntimeError(f"{op} answered {response['statusCode']}: {body}")
    return dict(body["data"])


def duckdb_group(file: str, name: str) -> str:
    """A group whose duckdb destination is `file`, in the bench account's data folder (`duckdb_path`)."""
    group = invoke("create_group", api_event("create_group", body={"name": name}))
    invoke(
        "create_destination",
        api_event(
            "create_destination",
            body={"group_id": group["id"], "service": "duckdb", "config": {"path": file}},
        ),
    )
    return str(group["id"])


def duckdb_path(file: str) -> Path:
    from sluice.destinations.duckdb import account_dir

    return account_dir(ACCOUNT) / file


def rest_connection(group_id: str, config: dict[str, Any]) -> dict[str, Any]:
    body = {
        "group_id": group_id,
        "service": "rest_api",
        "config": config,
        "run_setup_tests": False,
        "schedule_type": "manual",
    }
    return invoke("create_connection", api_event("create_connection", body=body))


def quiet_logs() -> None:
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
