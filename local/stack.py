"""The local stack: the real handlers, wired as template.yaml wires them, on an embedded moto server.

    python -m local.stack            (or `make run`)

HTTP on 127.0.0.1:$PORT (3000) turns each request into an API Gateway REST proxy event, runs the
authorizer, and invokes the function the template routes it to. EventBridge rules deliver to SQS
queues that the stack polls to invoke their target functions; schedules fire on their rate.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from local.functions import handler_for
from local.lambda_context import LocalContext
from local.resources import LocalResources, create_resources
from local.template import ApiRoute, api_routes, authorizer_cache_seconds, authorizer_function

log = logging.getLogger("sluice.local")

ACCOUNT = "123456789012"
# Local only, never in template.yaml: `curl -X POST http://127.0.0.1:3000/_local/tick` runs the tick now.
LOCAL_TICK_PATH = "/_local/tick"
REGION = "us-east-1"
# API functions share Powertools' router state (class attributes), so they run one at a time, as each
# Lambda instance would; event workers each run one at a time too.
_api_lock = threading.Lock()


def _json_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "body": json.dumps({"code": code, "message": message}),
    }


def _binary_media_types() -> list[str]:
    """The API's BinaryMediaTypes (`~1` stands for `/`, as in the template)."""
    from local.template import resources

    types: list[str] = []
    for api in resources("AWS::Serverless::Api").values():
        types += [str(t).replace("~1", "/") for t in api["Properties"].get("BinaryMediaTypes", [])]
    return types


def _event_body(headers: dict[str, str], body: bytes) -> tuple[str | None, bool]:
    """The event's body as API Gateway passes it: base64 (isBase64Encoded) for a binary media type."""
    if not body:
        return None, False
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    media_type = content_type.split(";")[0].strip().lower()
    if any(media_type == t or (t.endswith("/*") and media_type.startswith(t[:-1])) for t in _BINARY):
        return base64.b64encode(body).decode("ascii"), True
    return body.decode("utf-8", errors="replace"), False


_BINARY = _binary_media_types()


class LocalStack:
    def __init__(self, resources: LocalResources, data_dir: Path) -> None:
        self.resources = resources
        self.data_dir = data_dir
        self.routes: list[ApiRoute] = api_routes()
        self.authorizer = handler_for(authorizer_function())
        self._worker_locks: dict[str, threading.Lock] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        # API Gateway caches each header's decision (a revoked key works until its entry expires).
        self._auth_cache: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self.auth_cache_seconds = authorizer_cache_seconds()

    # ---- HTTP → API Gateway ---------------------------------------------------------------------

    def route(self, method: str, path: str) -> tuple[ApiRoute, dict[str, str]] | None:
        for route in self.routes:
            match = route.matcher().match(path)
            if match and route.method in (method, "ANY"):
                return route, {k: v for k, v in match.groupdict().items()}
        return None

    def _authorize(self, event: dict[str, Any]) -> dict[str, Any] | None:
        header = next((v for k, v in event["headers"].items() if k.lower() == "authorization"), "")
        cached = self._auth_cache.get(header)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        request = {
            "type": "REQUEST",
            "methodArn": (
                f"arn:aws:execute-api:{REGION}:{ACCOUNT}:local/v1stage/{event['httpMethod']}{event['path']}"
            ),
            "resource": event["resource"],
            "path": event["path"],
            "httpMethod": event["httpMethod"],
            "headers": event["headers"],
            "queryStringParameters": event["queryStringParameters"],
            "requestContext": event["requestContext"],
        }
        try:
            with _api_lock:
                result = self.authorizer(request, LocalContext(function_name="AuthorizerFunction"))
        except Exception as exc:
            if str(exc) != "Unauthorized":
                log.exception("authorizer failed")
            return None
        statement = result["policyDocument"]["Statement"][0]
        context = result.get("context", {}) if statement["Effect"] == "Allow" else None
        self._auth_cache[header] = (time.monotonic() + self.auth_cache_seconds, context)
        return context

    def handle_http(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        url = urlsplit(raw_path)
        path = url.path or "/"
        query = parse_qs(url.query, keep_blank_values=True)
        if path == LOCAL_TICK_PATH and method == "POST":
            return self._tick_now()
        found = self.route(method, path)
        if found is None:
            return _json_error(404, "NotFound", f"No route matches {method} {path}")
        route, path_params = found
        text, encoded = _event_body(headers, body)
        event: dict[str, Any] = {
            "resource": route.path,
            "path": path,
            "httpMethod": method,
            "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
            "multiValueQueryStringParameters": query or None,
            "pathParameters": path_params or None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": route.path,
                "httpMethod": method,
                "path": f"/v1stage{path}",
                "stage": "v1stage",
                "requestId": str(uuid.uuid4()),
                "accountId": ACCOUNT,
                "apiId": "local",
                "identity": {"sourceIp": "127.0.0.1"},
                "requestTimeEpoch": int(time.time() * 1000),
            },
            "body": text,
            "isBase64Encoded": encoded,
        }
        if route.authorized:
            context = self._authorize(event)
            if context is None:
                return _json_error(
                    401,
                    "Unauthorized",
                    "Missing or invalid credentials",
                    {"WWW-Authenticate": 'Basic realm="sluice"'},
                )
            event["requestContext"]["authorizer"] = {**context, "principalId": context.get("user_id")}
        handler = handler_for(route.function)
        with _api_lock:
            return dict(handler(event, LocalContext(function_name=route.function)))

    def _tick_now(self) -> dict[str, Any]:
        """Local only: run every scheduled function now (the scheduler tick), for demos and tests."""
        results = {
            function_id: self.fire_schedule(function_id)
            for _, function_id in self.resources.schedules.values()
        }
        return {
            "statusCode": 200,
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps(
                {"code": "Success", "message": "Schedules fired", "data": results}, default=str
            ),
        }

    # ---- EventBridge rules → SQS → functions -------------------------------------------------------

    def invoke_worker(self, function_id: str, event: dict[str, Any]) -> Any:
        lock = self._worker_locks.setdefault(function_id, threading.Lock())
        with lock:
            return handler_for(function_id)(
                event, LocalContext(function_name=function_id, timeout_seconds=900)
            )

    def _poll_rule(self, queue_url: str, function_id: str) -> None:
        from sluice.aws import client

        sqs = client("sqs")
        while not self._stop.is_set():
            try:
                messages = sqs.receive_message(
                    QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=60
                ).get("Messages", [])
            except Exception:  # the server is going away
                if self._stop.is_set():
                    return
                log.exception("polling %s failed", queue_url)
                time.sleep(1)
                continue
            for message in messages:
                try:
                    self.invoke_worker(function_id, json.loads(message["Body"]))
                except Exception:
                    # Left on the queue: it comes back after the visibility timeout, as Lambda retries.
                    log.exception("%s failed; the event will be retried", function_id)
                    continue
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    def _run_schedule(self, expression: str, function_id: str) -> None:
        period = _rate_seconds(expression)
        while not self._stop.wait(period):
            self.fire_schedule(function_id)

    def fire_schedule(self, function_id: str) -> Any:
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": ACCOUNT,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": REGION,
            "resources": [],
            "detail": {},
        }
        try:
            return self.invoke_worker(function_id, event)
        except Exception:
            log.exception("scheduled %s failed", function_id)
            return None

    def _record_bus(self, queue_url: str) -> None:
        """Append every event on the bus to <data dir>/events.jsonl, so a local user can see them."""
        from sluice.aws import client

        sqs = client("sqs")
        path = self.data_dir / "events.jsonl"
        while not self._stop.is_set():
            try:
                messages = sqs.receive_message(
                    QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
                ).get("Messages", [])
            except Exception:
                if self._stop.is_set():
                    return
                time.sleep(1)
                continue
            with path.open("a") as log_file:
                for message in messages:
                    event = json.loads(message["Body"])
                    log_file.write(json.dumps(event) + "\n")
                    log.info(
                        "event: %s %s",
                        event.get("detail-type"),
                        event.get("detail", {}).get("connection_id", ""),
                    )
            for message in messages:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    def start_workers(self) -> None:
        if self.resources.bus_log_queue:
            self._spawn(lambda: self._record_bus(self.resources.bus_log_queue))
        for queue_url, function_id in self.resources.rule_queues.values():
            self._spawn(lambda q=queue_url, f=function_id: self._poll_rule(q, f))
        if os.environ.get("SLUICE_LOCAL_SCHEDULES", "on").lower() in ("off", "0", "false"):
            log.info("schedules fire only on POST %s (SLUICE_LOCAL_SCHEDULES=off)", LOCAL_TICK_PATH)
            return
        for expression, function_id in self.resources.schedules.values():
            self._spawn(lambda e=expression, f=function_id: self._run_schedule(e, f))

    def _spawn(self, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()


def _rate_seconds(expression: str) -> float:
    match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression.strip())
    if not match:
        raise ValueError(f"the local stack only runs rate() schedules, not {expression!r}")
    unit = {"minute": 60, "hour": 3600, "day": 86400}[match.group(2).rstrip("s")]
    return int(match.group(1)) * unit


def make_http_handler(stack: LocalStack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k: v for k, v in self.headers.items()}
            try:
                response = stack.handle_http(self.command, self.path, headers, body)
            except Exception:
                log.exception("request failed")
                response = _json_error(500, "InternalError", "Internal error")
            payload = response.get("body") or ""
            data = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode()
            self.send_response(int(response.get("statusCode", 200)))
            sent = set()
            for key, value in (response.get("headers") or {}).items():
                self.send_header(key, str(value))
                sent.add(key.lower())
            for key, values in (response.get("multiValueHeaders") or {}).items():
                if key.lower() in sent:
                    continue
                for value in values:
                    self.send_header(key, str(value))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = _serve

        def log_message(self, format: str, *args: Any) -> None:
            log.info("%s %s", self.address_string(), format % args)

    return Handler


def start_moto(port: int = 0) -> Any:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, bound_port = server.get_host_and_port()
    return server, f"http://{host}:{bound_port}"


def prepare_environment(endpoint: str, data_dir: Path) -> LocalResources:
    """Point boto3 at moto, create the template's resources there, and export their names."""
    for var in [v for v in os.environ if v.startswith("AWS_ENDPOINT_URL")]:
        del os.environ[var]
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "SLUICE_ALLOW_LOOPBACK": "1",
            "SLUICE_DATA_DIR": str(data_dir),
            "POWERTOOLS_TRACE_DISABLED": "1",
            "POWERTOOLS_METRICS_NAMESPACE": "Sluice",
            "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
        }
    )
    # Connector SDK connectors run on the interpreter `make clients` installs the SDK into.
    sdk_python = Path(__file__).resolve().parent.parent / ".venv-clients" / "connector-sdk" / "bin" / "python"
    if sdk_python.exists():
        os.environ.setdefault("CONNECTOR_SDK_PYTHON", str(sdk_python))
    import boto3

    resources = create_resources(boto3.session.Session(region_name=REGION), bus_log=True)
    os.environ.update(resources.env)
    shared = str(Path(__file__).resolve().parent.parent / "shared")
    if shared not in sys.path:
        sys.path.insert(0, shared)
    from sluice.aws import reset_clients
    from sluice.settings import get_settings

    get_settings.cache_clear()
    reset_clients()
    return resources


# The seeded key's account: fixed, so that its default group's file has a known place,
# `<data folder>/local/default.duckdb` (every duckdb file lives in its account's folder).
LOCAL_ACCOUNT_ID = "local"
DEFAULT_DUCKDB_FILE = "default.duckdb"


def seed(data_dir: Path) -> dict[str, str]:
    """The first API key (of account `local`) and a default group with a duckdb destination."""
    from sluice.accounts.api_keys import create_api_key
    from sluice.api.caller import Caller
    from sluice.api.request_models import CreateDestinationRequest, CreateGroupRequest
    from sluice.groups.operations import create_destination, create_group
    from sluice.storage.store import get_store

    table = get_store()
    key = create_api_key(
        table,
        account_id=LOCAL_ACCOUNT_ID,
        api_key=os.environ.get("SLUICE_API_KEY") or None,
        api_secret=os.environ.get("SLUICE_API_SECRET") or None,
    )
    caller = Caller(account_id=key.account_id, user_id=key.user_id)
    group = create_group(caller, CreateGroupRequest(name="default"), table)
    create_destination(
        caller,
        CreateDestinationRequest(
            group_id=group["id"], service="duckdb", config={"path": DEFAULT_DUCKDB_FILE}
        ),
        table,
    )
    return {
        "api_key": key.api_key,
        "api_secret": key.api_secret,
        "group_id": group["id"],
        "duckdb_file": str(data_dir / key.account_id / DEFAULT_DUCKDB_FILE),
    }


class RunningStack:
    """A started local stack (used by `main` and by the e2e and compat tests)."""

    def __init__(self, port: int = 0, data_dir: Path | None = None) -> None:
        self.data_dir = (data_dir or Path(os.environ.get("SLUICE_DATA_DIR") or ".sluice")).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.moto, self.aws_endpoint = start_moto()
        resources = prepare_environment(self.aws_endpoint, self.data_dir)
        self.seeded = seed(self.data_dir)
        self.stack = LocalStack(resources, self.data_dir)
        self.stack.start_workers()
        self.http = ThreadingHTTPServer(("127.0.0.1", port), make_http_handler(self.stack))
        self.http.daemon_threads = True
        self.port = self.http.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.stack.stop()
        self.http.shutdown()
        self.http.server_close()
        self.moto.stop()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    port = int(os.environ.get("PORT", "3000"))
    running = RunningStack(port=port)
    seeded = running.seeded
    from_env = bool(os.environ.get("SLUICE_API_SECRET"))
    secret_line = "(from SLUICE_API_SECRET)" if from_env else seeded["api_secret"]
    auth = (
        '$(printf \'%s:%s\' "$SLUICE_API_KEY" "$SLUICE_API_SECRET" | base64 -w0)'
        if from_env
        else (base64.b64encode(f"{seeded['api_key']}:{seeded['api_secret']}".encode()).decode())
    )
    print(
        "\n".join(
            [
                f"Sluice local stack ready on {running.url}",
                f"  API key:    {seeded['api_key']}",
                f"  API secret: {secret_line}",
                f"  group:      {seeded['group_id']} (duckdb destination {seeded['duckdb_file']})",
                f"  AWS (moto): {running.aws_endpoint}  (e.g. aws --endpoint-url {running.aws_endpoint} s3 mb s3://b)",
                f"  events:     {running.data_dir / 'events.jsonl'}",
                f"  tick now:   curl -X POST {running.url}{LOCAL_TICK_PATH}",
                f"  try: curl -s -H 'Authorization: Basic {auth}' {running.url}/v1/groups",
                "  Ctrl-C stops it.",
            ]
        ),
        flush=True,
    )
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        running.close()
        print("Sluice local stack stopped.", flush=True)


if __name__ == "__main__":
    main()
