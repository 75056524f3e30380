"""The local stack: the real handlers, wired as template.yaml wires them, on an embedded moto server.

    python -m local.stack            (or `make run`)

HTTP on 127.0.0.1:$PORT (3000) turns each request into an API Gateway REST proxy event, runs the
authorizer, and invokes the function the template routes it to. EventBridge rules deliver to SQS
queues that the stack polls to invoke their target functions; schedules fire on their rate.

Like Lambda, every function runs in its own execution environments, several at once: API functions as
module copies on threads of this process (local.isolation), worker functions (syncs, setup tests, the
tick) in processes of their own (local.processes), so that a sync never competes with moto or the API
for one interpreter. A slow source in one tenant's call or sync holds only that invocation. The
control plane is kept under the data folder across restarts (local.persistence); `--fresh` starts
from nothing.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import re
import shutil
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

from local.isolation import Functions
from local.lambda_context import LocalContext
from local.persistence import SAVE_EVERY_SECONDS, SNAPSHOT_FILE, ControlPlaneFile
from local.processes import InvocationFailed, WorkerPool
from local.resources import LocalResources, create_resources
from local.template import ApiRoute, api_routes, authorizer_cache_seconds, authorizer_function

# Not under "sluice": that is the functions' Powertools logger, quiet (WARNING) unless asked.
log = logging.getLogger("local.stack")

ACCOUNT = "123456789012"
# Local only, never in template.yaml: `curl -X POST http://127.0.0.1:3000/_local/tick` runs the tick now.
LOCAL_TICK_PATH = "/_local/tick"
# Local only: what the worker functions (sync, setup tests, tick) have cost so far, per function.
LOCAL_STATS_PATH = "/_local/stats"
REGION = "us-east-1"
# Execution environments per function at once (Lambda's concurrency, bounded here): API functions,
# and functions that EventBridge rules invoke (sync and setup-test workers). More invocations wait.
API_CONCURRENCY = 16
WORKER_CONCURRENCY = 4
# Accepted connections waiting for a thread (the listen backlog): bursts of clients are not reset.
HTTP_BACKLOG = 256
# A rule's message stays invisible while its function runs (Lambda's 15 minutes and a margin); a failed
# invocation's message comes back after RETRY_AFTER_SECONDS, as Lambda retries an event.
WORKER_VISIBILITY_SECONDS = 960
RETRY_AFTER_SECONDS = float(os.environ.get("SLUICE_LOCAL_RETRY_AFTER_SECONDS") or 60)
# Lambda runs a failed asynchronous event at most three times (two retries), then sends it to the
# function's on-failure destination: here, a line in <data dir>/dead-letters.jsonl.
INVOCATION_ATTEMPTS = 3
DEAD_LETTERS_FILE = "dead-letters.jsonl"


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
        self.authorizer = authorizer_function()
        self.functions = Functions()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        # API Gateway caches each header's decision (a revoked key works until its entry expires).
        self._auth_cache: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self.auth_cache_seconds = authorizer_cache_seconds()
        # Per worker function: invocations and the DynamoDB requests they sent (GET /_local/stats).
        self._stats: dict[str, dict[str, int]] = {}
        self._stats_lock = threading.Lock()
        self._workers: dict[str, WorkerPool] = {}

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
            result = self.functions.invoke(
                self.authorizer, API_CONCURRENCY, request, LocalContext(function_name=self.authorizer)
            )
        except Exception as exc:
            if str(exc) != "Unauthorized":
                log.exception("authorizer failed")
            return None
        statement = result["policyDocument"]["Statement"][0]
        context = result.get("context", {}) if statement["Effect"] == "Allow" else None
        self._auth_cache[header] = (time.monotonic() + self.auth_cache_seconds, context)
        return context

    def handle_http(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        """The response to one request, with API Gateway's request id header (the functions log it as
        their correlation id)."""
        request_id = str(uuid.uuid4())
        response = self._respond(method, raw_path, headers, body, request_id)
        response["headers"] = {**(response.get("headers") or {}), "x-amzn-RequestId": request_id}
        return response

    def _respond(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes, request_id: str
    ) -> dict[str, Any]:
        url = urlsplit(raw_path)
        path = url.path or "/"
        if not path.startswith("/"):  # CONNECT's host:port, or a bare word: still a path to answer
            path = "/" + path
        query = parse_qs(url.query, keep_blank_values=True)
        if path == LOCAL_TICK_PATH and method == "POST":
            return self._tick_now()
        if path == LOCAL_STATS_PATH and method == "GET":
            with self._stats_lock:
                stats = json.loads(json.dumps(self._stats))
            return {
                "statusCode": 200,
                "headers": {"Content-Type": "application/json"},
                "body": json.dumps({"code": "Success", "data": stats}),
            }
        found = self.route(method, path)
        if found is None:  # only "/" (the catch-all serves every other path)
            from sluice.api.routes import SERVED_METHODS

            if method not in SERVED_METHODS:
                return _json_error(405, "MethodNotAllowed", f"Method {method} is not allowed on {path}")
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
                "requestId": request_id,
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
        return dict(
            self.functions.invoke(
                route.function, API_CONCURRENCY, event, LocalContext(function_name=route.function)
            )
        )

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
        """Run a worker function in its own process (local.processes), as Lambda would."""
        with self._stats_lock:
            pool = self._workers.get(function_id)
            if pool is None:
                pool = self._workers[function_id] = WorkerPool(function_id, WORKER_CONCURRENCY)
        context = LocalContext(function_name=function_id, timeout_seconds=900)
        try:
            result, dynamodb_requests = pool.invoke(event, context)
        except InvocationFailed:
            self._count(function_id, 0)
            raise
        self._count(function_id, dynamodb_requests)
        return result

    def _count(self, function_id: str, dynamodb_requests: int) -> None:
        with self._stats_lock:
            stats = self._stats.setdefault(function_id, {"invocations": 0, "dynamodb_requests": 0})
            stats["invocations"] += 1
            stats["dynamodb_requests"] += dynamodb_requests

    def _poll_rule(self, queue_url: str, function_id: str) -> None:
        """Take one message per free slot and run each on its own thread: a sync that hangs holds one
        slot, never the queue."""
        from sluice.aws import client

        sqs = client("sqs")
        slots = threading.BoundedSemaphore(WORKER_CONCURRENCY)
        while not self._stop.is_set():
            if not slots.acquire(timeout=1):
                continue
            try:
                messages = sqs.receive_message(
                    QueueUrl=queue_url,
                    MaxNumberOfMessages=1,
                    WaitTimeSeconds=1,
                    VisibilityTimeout=WORKER_VISIBILITY_SECONDS,
                    MessageSystemAttributeNames=["ApproximateReceiveCount"],
                ).get("Messages", [])
            except Exception:  # the server is going away
                slots.release()
                if self._stop.is_set():
                    return
                log.exception("polling %s failed", queue_url)
                self._stop.wait(1)
                continue
            if not messages:
                slots.release()
                continue
            threading.Thread(
                target=self._run_message,
                args=(sqs, queue_url, function_id, messages[0], slots),
                name=f"{function_id}-{messages[0]['MessageId'][:8]}",
                daemon=True,
            ).start()

    def _run_message(
        self, sqs: Any, queue_url: str, function_id: str, message: dict[str, Any], slots: Any
    ) -> None:
        attempt = int((message.get("Attributes") or {}).get("ApproximateReceiveCount") or 1)
        try:
            line = describe_worker_result(self.invoke_worker(function_id, json.loads(message["Body"])))
            if line:
                log.info("%s", line)
        except Exception:
            if attempt >= INVOCATION_ATTEMPTS:
                # As Lambda's on-failure destination: kept, not retried again.
                log.exception("%s failed %d times; the event is dead-lettered", function_id, attempt)
                with (self.data_dir / DEAD_LETTERS_FILE).open("a") as dead:
                    dead.write(
                        json.dumps({"function": function_id, "event": json.loads(message["Body"])}) + "\n"
                    )
                self._delete(sqs, queue_url, message)
                return
            log.exception("%s failed; the event will be retried", function_id)
            try:  # back on the queue after a while, as Lambda retries a failed event
                sqs.change_message_visibility(
                    QueueUrl=queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=round(RETRY_AFTER_SECONDS),
                )
            except Exception:
                if not self._stop.is_set():
                    log.exception("could not return the event to %s", queue_url)
        else:
            self._delete(sqs, queue_url, message)
        finally:
            slots.release()

    def _delete(self, sqs: Any, queue_url: str, message: dict[str, Any]) -> None:
        try:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        except Exception:
            if not self._stop.is_set():
                log.exception("could not delete the event from %s", queue_url)

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
            events = [json.loads(message["Body"]) for message in messages]
            if events:
                with path.open("a") as log_file:
                    log_file.writelines(json.dumps(event) + "\n" for event in events)
            for event in events:
                log.info("%s", describe_event(event))
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
        with self._stats_lock:
            workers = list(self._workers.values())
        for pool in workers:
            pool.stop()


def describe_event(event: dict[str, Any]) -> str:
    """The console line for an event on the bus; a sync's end says its rows, time and failure reason."""
    detail = event.get("detail") or {}
    kind = event.get("detail-type", "")
    connection = detail.get("connection_id") or detail.get("connector_id") or ""
    if kind == "Sync Started":
        return f"sync started: connection {connection} (sync {detail.get('sync_id')})"
    if kind == "Sync Completed":
        data = detail.get("data") or {}
        line = (
            f"sync ended: connection {connection} {data.get('status')}, "
            f"{data.get('rows_upserted', 0)} rows upserted, {data.get('rows_deleted', 0)} deleted"
        )
        run = _sync_run(connection, str(detail.get("sync_id") or ""))
        if run.get("started_at") and run.get("finished_at"):
            from sluice.timestamps import parse_timestamp

            seconds = parse_timestamp(run["finished_at"]) - parse_timestamp(run["started_at"])
            line += f", {seconds.total_seconds():.1f} s"
        if data.get("status") != "SUCCESSFUL" and run.get("message"):
            line += f": {run['message']}"
        return line
    return f"event: {kind} {connection}".rstrip()


def describe_worker_result(result: Any) -> str | None:
    """The console line for a sync worker's invocation that did not end its sync (a sync's end has its
    own line, from its event): it stopped (lease lost, deleted...) or goes on in a continuation."""
    if not isinstance(result, dict) or result.get("status") not in ("SKIPPED", "CONTINUED"):
        return None
    line = f"sync worker: connection {result.get('connection_id')} (sync {result.get('sync_id')}) "
    if result["status"] == "CONTINUED":
        rows = result.get("rows_upserted", 0)
        return line + f"continues in a new invocation ({rows} rows upserted in this one)"
    return line + f"stopped: {result.get('message') or 'skipped'}"


def _sync_run(connection_id: str, sync_id: str) -> dict[str, Any]:
    from sluice.storage.store import get_store
    from sluice.storage.sync_store import SyncStore

    try:
        return SyncStore(get_store()).run(connection_id, sync_id) or {}
    except Exception:  # the console line is best effort; the event itself is on file
        return {}


def _rate_seconds(expression: str) -> float:
    match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression.strip())
    if not match:
        raise ValueError(f"the local stack only runs rate() schedules, not {expression!r}")
    unit = {"minute": 60, "hour": 3600, "day": 86400}[match.group(2).rstrip("s")]
    return int(match.group(1)) * unit


class LocalHTTPServer(ThreadingHTTPServer):
    """One thread per connection, and a listen backlog deep enough for bursts of clients."""

    request_queue_size = HTTP_BACKLOG
    daemon_threads = True


def make_http_handler(stack: LocalStack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            started = time.monotonic()
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0:
                self._send(_json_error(400, "InvalidInput", "Content-Length must be a whole number"))
                self.close_connection = True
                return
            body = self.rfile.read(length) if length else b""
            headers = {k: v for k, v in self.headers.items()}
            try:
                response = stack.handle_http(self.command, self.path, headers, body)
            except Exception:
                log.exception("request failed")
                response = _json_error(500, "InternalError", "Internal error")
            self._send(response)
            # One console line per request; the query string stays out (Connect Card tokens ride in it).
            log.info(
                "%s %s %s %.0f ms",
                self.command,
                urlsplit(self.path).path,
                response.get("statusCode", 200),
                (time.monotonic() - started) * 1000,
            )

        def _send(self, response: dict[str, Any]) -> None:
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
            if self.command != "HEAD":
                self.wfile.write(data)

        def __getattr__(self, name: str) -> Any:
            # Every method reaches the routes (the catch-all answers 405 for one no route has), where
            # BaseHTTPRequestHandler would answer 501 to any it has no do_<METHOD> for.
            if name.startswith("do_"):
                return self._serve
            raise AttributeError(name)

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            # Requests that never reach a route (a malformed request line, headers too long): JSON too.
            self.close_connection = True
            status = code if 400 <= code < 500 else 400
            self._send(_json_error(status, "InvalidInput", message or "Bad request"))

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            pass  # _serve writes the request line itself

        def log_message(self, format: str, *args: Any) -> None:
            log.info("%s %s", self.address_string(), format % args)

    return Handler


def start_moto(port: int = 0) -> Any:
    import functools

    from moto import backends
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    # moto's server lists its own package folder (a listdir and ~190 isdir calls) on every request to
    # find the backend; the folder does not change while the stack runs. Local only: AWS has no moto.
    if not hasattr(backends.list_of_moto_modules, "cache_info"):
        listed = backends.list_of_moto_modules
        backends.list_of_moto_modules = functools.cache(lambda: tuple(listed()))  # type: ignore[assignment]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, bound_port = server.get_host_and_port()
    return server, f"http://{host}:{bound_port}"


def prepare_environment(endpoint: str, data_dir: Path) -> tuple[LocalResources, ControlPlaneFile]:
    """Point boto3 at moto, create the template's resources there (loading the saved control plane
    into them when there is one), and export their names."""
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

    session = boto3.session.Session(region_name=REGION)
    resources = create_resources(session, bus_log=True)
    control_plane = ControlPlaneFile(data_dir, session, resources)
    if control_plane.exists():
        control_plane.restore()
    os.environ.update(resources.env)
    shared = str(Path(__file__).resolve().parent.parent / "shared")
    if shared not in sys.path:
        sys.path.insert(0, shared)
    from sluice.aws import client, reset_clients
    from sluice.settings import get_settings

    get_settings.cache_clear()
    reset_clients()
    # Create the shared clients once, before threads race to create them.
    for service in ("dynamodb", "kms", "events", "sqs", "s3", "secretsmanager"):
        client(service)
    return resources, control_plane


# The seeded key's account: fixed, so that its default group's file has a known place,
# `<data folder>/local/default.duckdb` (every duckdb file lives in its account's folder).
LOCAL_ACCOUNT_ID = "local"
DEFAULT_DUCKDB_FILE = "default.duckdb"


def seed(data_dir: Path, kept: dict[str, str]) -> dict[str, str]:
    """The first API key (of account `local`) and a default group with a duckdb destination; after a
    restart, what was kept (and the key from SLUICE_API_KEY / SLUICE_API_SECRET added to that account
    if it is new)."""
    from sluice.accounts.api_keys import create_api_key
    from sluice.api.caller import Caller
    from sluice.api.request_models import CreateDestinationRequest, CreateGroupRequest
    from sluice.groups.operations import create_destination, create_group
    from sluice.storage.store import api_key_key, get_store

    table = get_store()
    wanted_key = os.environ.get("SLUICE_API_KEY") or None
    wanted_secret = os.environ.get("SLUICE_API_SECRET") or None
    if kept.get("group_id"):
        seeded = {**kept, "api_secret": ""}
        if wanted_key and wanted_secret and table.get(api_key_key(wanted_key)) is None:
            create_api_key(
                table,
                account_id=kept["account_id"],
                user_id=kept["user_id"],
                api_key=wanted_key,
                api_secret=wanted_secret,
            )
            seeded.update(api_key=wanted_key, api_secret=wanted_secret)
        return seeded
    key = create_api_key(table, account_id=LOCAL_ACCOUNT_ID, api_key=wanted_key, api_secret=wanted_secret)
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
        "account_id": key.account_id,
        "user_id": key.user_id,
        "group_id": group["id"],
        "duckdb_file": str(data_dir / key.account_id / DEFAULT_DUCKDB_FILE),
    }


def resume_interrupted_syncs(control_plane: ControlPlaneFile) -> list[str]:
    """Syncs that were running when the stack stopped continue from their last checkpoint."""
    from sluice.sync.events import SyncRequest, request_sync

    resumed = []
    for account_id, connection_id, sync_id in control_plane.interrupted_syncs():
        request_sync(SyncRequest(account_id, connection_id, reason="continuation", sync_id=sync_id))
        resumed.append(connection_id)
    return resumed


def start_fresh(data_dir: Path) -> None:
    """Forget everything the stack kept: only a folder the stack made (or an empty one) is emptied."""
    if not data_dir.exists():
        return
    if any(data_dir.iterdir()) and not (data_dir / SNAPSHOT_FILE).exists():
        raise SystemExit(f"--fresh: {data_dir} is not a local stack's data folder; not deleting it")
    shutil.rmtree(data_dir)


def protect_own_endpoints(aws_endpoint: str, api_port: int) -> None:
    """Loopback sources are allowed locally, but never the stack's own endpoints: moto holds the
    Connect Card signing key and every tenant's items, the API is the stack itself."""
    from sluice.settings import get_settings

    aws = urlsplit(aws_endpoint)
    os.environ["SLUICE_OWN_ENDPOINTS"] = f"{aws.hostname}:{aws.port},127.0.0.1:{api_port}"
    get_settings.cache_clear()


class RunningStack:
    """A started local stack (used by `main` and by the e2e and compat tests)."""

    def __init__(
        self, port: int = 0, data_dir: Path | None = None, fresh: bool = False, aws_port: int = 0
    ) -> None:
        self.data_dir = (data_dir or Path(os.environ.get("SLUICE_DATA_DIR") or ".sluice")).resolve()
        if fresh:
            start_fresh(self.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.moto, self.aws_endpoint = start_moto(aws_port)
        resources, self.control_plane = prepare_environment(self.aws_endpoint, self.data_dir)
        self.restored = bool(self.control_plane.meta)
        self.seeded = seed(self.data_dir, self.control_plane.meta)
        self.control_plane.meta = {k: v for k, v in self.seeded.items() if k != "api_secret"}
        self.control_plane.save()
        self.stack = LocalStack(resources, self.data_dir)
        self.http = LocalHTTPServer(("127.0.0.1", port), make_http_handler(self.stack))
        self.port = self.http.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        protect_own_endpoints(self.aws_endpoint, self.port)
        self.stack.start_workers()
        self.resumed = resume_interrupted_syncs(self.control_plane) if self.restored else []
        self._saver = threading.Thread(target=self._save_periodically, name="control-plane", daemon=True)
        self._saver.start()
        self._thread = threading.Thread(target=self.http.serve_forever, name="http", daemon=True)
        self._thread.start()

    def _save_periodically(self) -> None:
        while not self.stack._stop.wait(SAVE_EVERY_SECONDS):
            try:
                self.control_plane.save()
            except Exception:
                log.exception("could not save the control plane")

    def close(self) -> None:
        self.stack.stop()
        self.http.shutdown()
        self.http.server_close()
        self._saver.join()
        self.control_plane.save()
        self.moto.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local.stack", description="Run the local stack.")
    parser.add_argument(
        "--fresh", action="store_true", help="forget the kept control plane and data; start from nothing"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    port = int(os.environ.get("PORT", "3000"))
    # The AWS endpoint sits next to the API (3001 by default), so commands in the README paste as they are.
    aws_port = int(os.environ.get("SLUICE_AWS_PORT") or (port + 1 if port else 0))
    running = RunningStack(port=port, fresh=args.fresh, aws_port=aws_port)
    seeded = running.seeded
    from_env = bool(os.environ.get("SLUICE_API_SECRET"))
    if from_env:
        secret_line = "(from SLUICE_API_SECRET)"
    elif seeded["api_secret"]:
        secret_line = seeded["api_secret"]
    else:
        secret_line = "(kept from the last run: printed when the key was made)"
    auth = (
        '$(printf \'%s:%s\' "$SLUICE_API_KEY" "$SLUICE_API_SECRET" | base64 -w0)'
        if from_env or not seeded["api_secret"]
        else (base64.b64encode(f"{seeded['api_key']}:{seeded['api_secret']}".encode()).decode())
    )
    if from_env:
        paste_key = "$SLUICE_API_KEY:$SLUICE_API_SECRET"
    elif seeded["api_secret"]:
        paste_key = f"{seeded['api_key']}:{seeded['api_secret']}"
    else:
        paste_key = f"{seeded['api_key']}:<its secret, printed when it was made>"
    kept = running.data_dir / SNAPSHOT_FILE
    lines = [
        f"Sluice local stack ready on {running.url}",
        f"  API key:    {seeded['api_key']}",
        f"  API secret: {secret_line}",
        f"  group:      {seeded['group_id']} (duckdb destination {seeded['duckdb_file']})",
        f"  AWS (moto): {running.aws_endpoint}  (credentials: local / local, region {REGION})",
        f"  events:     {running.data_dir / 'events.jsonl'}",
        f"  kept in:    {kept} ({'loaded from the last run' if running.restored else 'new'};"
        " --fresh or make clean starts from nothing)",
        f"  tick now:   curl -X POST {running.url}{LOCAL_TICK_PATH}",
        f"  try: curl -s -H 'Authorization: Basic {auth}' {running.url}/v1/groups",
        "  paste in another terminal (the README's walkthrough uses these):",
        f'    export SLUICE={running.url} AUTH="-u {paste_key}" GROUP={seeded["group_id"]}',
    ]
    if running.resumed:
        lines.append(f"  resumed:    syncs of {', '.join(running.resumed)} from their last checkpoint")
    lines.append("  Ctrl-C stops it.")
    print("\n".join(lines), flush=True)
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
