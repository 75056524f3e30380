"""Issue 9 item 13 and issue 17, against the local stack over real HTTP on loopback: one tenant's hanging
source holds neither another tenant's API calls nor their syncs; 50 concurrent clients are all
answered; every log record carries its own invocation's function name and correlation id; a method
no route has is a JSON 405, never a 501."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import requests

from local.sample_api import SampleApi, config_for
from tests.support.gated_source import GatedSource
from tests.support.local_stack import LocalStackProcess, start_local_stack, wait_for_sync

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    # Function logs at INFO, so the log-record test can read them on the stack's console.
    running = start_local_stack(
        tmp_path_factory.mktemp("isolation"), env_extra={"POWERTOOLS_LOG_LEVEL": "INFO"}
    )
    yield running
    running.stop()


def tenant(stack: LocalStackProcess) -> requests.Session:
    """A session with a key of a new account."""
    key, secret, _ = stack.new_api_key()
    session = requests.Session()
    session.auth = (key, secret)
    return session


def group_with_duckdb(stack: LocalStackProcess, http: requests.Session) -> str:
    group = http.post(f"{stack.url}/v1/groups", json={"name": "g_" + uuid.uuid4().hex[:8]}, timeout=60)
    assert group.status_code == 201, group.text
    group_id = str(group.json()["data"]["id"])
    made = http.post(
        f"{stack.url}/v1/destinations",
        json={"group_id": group_id, "service": "duckdb", "config": {"path": f"{group_id}.duckdb"}},
        timeout=60,
    )
    assert made.status_code == 201, made.text
    return group_id


def test_a_hanging_source_holds_only_its_own_api_call(stack: LocalStackProcess) -> None:
    hung = tenant(stack)
    other = tenant(stack)
    with GatedSource() as source:
        group_id = group_with_duckdb(stack, hung)
        replies: list[requests.Response] = []

        def create_with_setup_tests() -> None:  # the setup tests read the hanging source
            replies.append(
                hung.post(
                    f"{stack.url}/v1/connections",
                    json={"group_id": group_id, "service": "rest_api", "config": config_for(source.url)},
                    timeout=120,
                )
            )

        held = threading.Thread(target=create_with_setup_tests)
        held.start()
        assert source.entered.wait(60), "the setup tests never reached the source"

        # Another tenant's calls, to other functions and to the very function that is held.
        other_group = group_with_duckdb(stack, other)
        listed = other.get(f"{stack.url}/v1/groups", timeout=60)
        assert listed.status_code == 200, listed.text
        same_function = other.post(
            f"{stack.url}/v1/connections",
            json={
                "group_id": other_group,
                "service": "rest_api",
                "config": config_for("http://127.0.0.1:9"),
                "run_setup_tests": False,
            },
            timeout=60,
        )
        assert same_function.status_code == 201, same_function.text
        # Answered while the other tenant's call was still held by its source.
        assert held.is_alive() and not source.opened.is_set()

        source.open()
        held.join(120)
    assert replies and replies[0].status_code < 500, replies


def test_a_hanging_sync_holds_only_itself(stack: LocalStackProcess) -> None:
    hung = tenant(stack)
    with GatedSource() as source, SampleApi(rows=50) as api:
        group_id = group_with_duckdb(stack, hung)
        created = hung.post(
            f"{stack.url}/v1/connections",
            json={
                "group_id": group_id,
                "service": "rest_api",
                "config": config_for(source.url, schema="hung"),
                "run_setup_tests": False,
            },
            timeout=60,
        )
        assert created.status_code == 201, created.text
        hung_url = f"{stack.url}/v1/connections/{created.json()['data']['id']}"
        assert hung.post(f"{hung_url}/sync", json={}, timeout=60).status_code == 200
        assert source.entered.wait(60), "the sync never reached the source"

        # Another tenant's sync runs to its end meanwhile.
        http = stack.session()
        other = http.post(
            f"{stack.url}/v1/connections",
            json={
                "group_id": stack.group_id,
                "service": "rest_api",
                "config": config_for(api.url, schema="free_" + uuid.uuid4().hex[:6]),
                "run_setup_tests": False,
            },
            timeout=60,
        )
        assert other.status_code == 201, other.text
        other_url = f"{stack.url}/v1/connections/{other.json()['data']['id']}"
        assert http.post(f"{other_url}/sync", json={}, timeout=60).status_code == 200
        finished = wait_for_sync(http, other_url, None, timeout=120)
        assert finished["failed_at"] is None, finished

        still = hung.get(hung_url, timeout=60).json()["data"]
        assert still["status"]["sync_state"] == "syncing" and not source.opened.is_set()


def test_fifty_concurrent_clients_are_all_answered(stack: LocalStackProcess) -> None:
    clients = 50
    start = threading.Barrier(clients)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def one() -> None:
        start.wait(60)
        try:  # a new connection each: no session, so every client dials at once
            statuses.append(requests.get(f"{stack.url}/v1/groups", auth=stack.auth, timeout=120).status_code)
        except requests.RequestException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    assert errors == []
    assert statuses == [200] * clients


def _records(stack: LocalStackProcess) -> list[dict]:
    found = []
    for line in list(stack.output):
        if line.startswith("{"):
            try:
                found.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return found


def test_each_log_record_carries_its_own_function_and_correlation_id(stack: LocalStackProcess) -> None:
    # Requests to two functions at once; each is refused (404) and its function logs why, naming the id.
    asked = [("groups", "GetGroupFunction"), ("connections", "GetConnectionFunction")] * 15
    start = threading.Barrier(len(asked))
    answers: dict[str, tuple[str, str]] = {}  # missing id -> (request id, function)

    def one(noun: str, function: str) -> None:
        missing = f"missing{uuid.uuid4().hex[:10]}"
        start.wait(60)
        reply = requests.get(f"{stack.url}/v1/{noun}/{missing}", auth=stack.auth, timeout=120)
        assert reply.status_code == 404, reply.text
        answers[missing] = (reply.headers["x-amzn-RequestId"], function)

    threads = [threading.Thread(target=one, args=pair) for pair in asked]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    assert len(answers) == len(asked)

    def logged() -> dict[str, dict]:
        by_id = {}
        for record in _records(stack):
            for missing in answers:
                if missing in json.dumps(record):
                    by_id[missing] = record
        return by_id

    # The console is read by a pump thread: wait for the records themselves (bounded).
    deadline = time.monotonic() + 60
    while len(found := logged()) < len(answers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert set(found) == set(answers)
    for missing, (request_id, function) in answers.items():
        record = found[missing]
        assert (record.get("function_name"), record.get("correlation_id")) == (function, request_id), record


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND", "PUT", "OPTIONS"])
@pytest.mark.parametrize("path", ["/v1/groups", "/v1/connections/abc", "/nowhere", "/"])
def test_a_method_no_route_has_is_a_json_405(stack: LocalStackProcess, method: str, path: str) -> None:
    reply = requests.request(method, f"{stack.url}{path}", auth=stack.auth, timeout=60)
    assert reply.status_code == 405, reply.text
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.json()["code"] == "MethodNotAllowed"


def test_head_has_no_body_and_the_connection_stays_usable(stack: LocalStackProcess) -> None:
    with requests.Session() as http:
        http.auth = stack.auth
        head = http.head(f"{stack.url}/v1/groups", timeout=60)
        assert head.status_code == 405 and head.content == b""
        assert http.get(f"{stack.url}/v1/groups", timeout=60).status_code == 200


def test_requests_that_reach_no_route_are_json_too(stack: LocalStackProcess) -> None:
    import socket

    host, port = stack.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as raw:
        # A header line longer than the server reads (64 KiB): refused before any route is asked.
        raw.sendall(b"GET /v1/groups HTTP/1.1\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = raw.recv(65536)
            if not chunk:
                break
            answer += chunk
    status_line, _, rest = answer.decode().partition("\r\n")
    assert status_line.startswith("HTTP/1.1 431")
    assert json.loads(rest.split("\r\n\r\n", 1)[1])["code"] == "InvalidInput"


def test_the_console_shows_each_request_without_its_query(stack: LocalStackProcess) -> None:
    marker = uuid.uuid4().hex[:10]
    requests.get(f"{stack.url}/v1/groups/g{marker}?token=secret{marker}", auth=stack.auth, timeout=60)
    deadline = time.monotonic() + 60
    while not (lines := [line for line in list(stack.output) if f"g{marker}" in line and " ms" in line]):
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert any(f"GET /v1/groups/g{marker} 404 " in line for line in lines), lines
    assert not any(f"secret{marker}" in line for line in stack.output)


def test_a_key_revoked_over_http_is_refused_and_others_keys_are_not_anyones(stack: LocalStackProcess) -> None:
    key, secret, account = stack.new_api_key()
    spare, spare_secret, _ = stack.new_api_key(account_id=account)
    stranger = tenant(stack)
    # Another account cannot revoke it, nor tell it from a key that does not exist.
    refused = stranger.delete(f"{stack.url}/v1/api-keys/{spare}", timeout=60)
    assert refused.status_code == 404, refused.text
    revoked = requests.delete(f"{stack.url}/v1/api-keys/{spare}", auth=(key, secret), timeout=60)
    assert revoked.status_code == 200, revoked.text
    # Never used before, so no cached decision: refused at once.
    assert requests.get(f"{stack.url}/v1/groups", auth=(spare, spare_secret), timeout=60).status_code == 401
    assert requests.get(f"{stack.url}/v1/groups", auth=(key, secret), timeout=60).status_code == 200


def _console_line(stack: LocalStackProcess, *parts: str) -> str | None:
    deadline = time.monotonic() + 60
    while True:  # the console is read by a pump thread: wait for the line itself (bounded)
        found = [line for line in list(stack.output) if all(part in line for part in parts)]
        if found or time.monotonic() > deadline:
            return found[-1] if found else None
        time.sleep(0.2)


def test_a_sync_into_a_duckdb_file_held_elsewhere_fails_saying_why(stack: LocalStackProcess) -> None:
    import duckdb

    http = tenant(stack)
    group_id = group_with_duckdb(stack, http)
    with SampleApi(rows=5) as api:
        created = http.post(
            f"{stack.url}/v1/connections",
            json={
                "group_id": group_id,
                "service": "rest_api",
                "config": config_for(api.url, schema="held"),
                "run_setup_tests": False,
            },
            timeout=60,
        )
        assert created.status_code == 201, created.text
        connection_id = created.json()["data"]["id"]
        url = f"{stack.url}/v1/connections/{connection_id}"
        assert http.post(f"{url}/sync", json={}, timeout=60).ok
        first = wait_for_sync(http, url, None, timeout=120)
        assert first["failed_at"] is None, first
        ended = _console_line(stack, "sync ended:", connection_id, "SUCCESSFUL")
        assert ended and "5 rows upserted" in ended and " s" in ended, ended

        (path,) = list(stack.data_dir.rglob(f"{group_id}.duckdb"))
        with duckdb.connect(str(path)):  # this test's process holds the file's lock now
            assert http.post(f"{url}/sync", json={}, timeout=60).ok
            failed = wait_for_sync(http, url, first["succeeded_at"], timeout=120)
        assert failed["failed_at"], failed
        line = _console_line(stack, "sync ended:", connection_id, "FAILURE_WITH_TASK")
        assert line and f"is open in another process (PID {os.getpid()})" in line, line
