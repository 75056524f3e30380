"""The `rest_api` source: any paginated JSON HTTP API.

Every request goes through `sluice.outbound.GuardedSession` (public addresses only, bounded time
and size). Pages are yielded as they arrive, one `Upserts` per page, each followed by a
`Checkpoint`.

Incremental tables (`cursor_field` set). The state keeps, per table, the largest cursor value of
the last complete read of that table; the next sync sends it as `cursor_param` and reads rows
with cursor >= that value. Rows equal to the saved value are read again (upserted by primary key,
so harmlessly) and never lost, however many rows share a value and wherever page boundaries fall.
The saved value only advances when a table has been read to its last page: an API that does not
return rows in cursor order could otherwise hide rows below a value saved mid-table.

Resuming. While a sync is under way the state also carries `run`: the tables finished in this
sync, and for the table in progress the cursor value its filter started from (`since`), the
largest value seen so far (`max`) and the position of the next page (a next URL, a cursor token,
a page number or an offset). A continuation resumes that table at that page with the same
filter, so a long historical sync finishes across several runs and no row is skipped; the
sync's last checkpoint drops `run`. Limits: offset and page positions assume the API's order is
stable between runs (true for the short gap before a continuation, as for any offset paging);
cursor values are compared as JSON values (ISO timestamps must share one format and zone); rows
changed during a sync in an API that does not sort by the cursor may get a value below the
saved one and wait for a historical sync.

State: {"tables": {"<table>": {"cursor": <value>}},
        "run": {"done": ["<table>", ...], "table": "<table>", "since": <value>, "max": <value>,
                "next": {"url" | "token" | "page" | "offset": ...}}}
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urljoin, urlsplit

from pydantic import Field, ValidationError, field_validator

from sluice.connections.model import SetupTestResult
from sluice.contract import Checkpoint, Operation, TableSpec, Upserts
from sluice.sources.base import (
    Secret,
    Service,
    ServiceConfig,
    SetupTestOptions,
    SourceAuthError,
    SourceError,
    SourceRateLimited,
    secret_paths,
)

if TYPE_CHECKING:
    from sluice.outbound import GuardedSession, Reply

# `requests` and `sluice.outbound` are imported where they are used: the API functions import this
# module for its config model only, and must not pay for an HTTP client at cold start.

Name = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class NoAuth(ServiceConfig):
    type: Literal["none"]


class BasicAuth(ServiceConfig):
    type: Literal["basic"]
    username: str
    password: Secret


class BearerAuth(ServiceConfig):
    type: Literal["bearer"]
    token: Secret


class ApiKeyAuth(ServiceConfig):
    type: Literal["api_key"]
    header: str = "X-API-Key"
    api_key: Secret


Auth = Annotated[NoAuth | BasicAuth | BearerAuth | ApiKeyAuth, Field(discriminator="type")]


class NoPagination(ServiceConfig):
    type: Literal["none"]


class NextLinkPagination(ServiceConfig):
    type: Literal["next_link"]
    next_path: str = "next"
    # The query parameter that asks for `page_size` rows on the first page (links carry it after).
    size_param: str | None = None


class LinkHeaderPagination(ServiceConfig):
    type: Literal["link_header"]
    size_param: str | None = None


class CursorPagination(ServiceConfig):
    type: Literal["cursor"]
    cursor_path: str
    cursor_param: str = "cursor"
    size_param: str | None = None


class PagePagination(ServiceConfig):
    type: Literal["page"]
    page_param: str = "page"
    size_param: str | None = None
    start_page: int = Field(default=1, ge=0, le=1_000_000_000)


class OffsetPagination(ServiceConfig):
    type: Literal["offset"]
    offset_param: str = "offset"
    limit_param: str = "limit"


Pagination = Annotated[
    NoPagination
    | NextLinkPagination
    | LinkHeaderPagination
    | CursorPagination
    | PagePagination
    | OffsetPagination,
    Field(discriminator="type"),
]


class RestApiTable(ServiceConfig):
    name: Name
    path: str = Field(min_length=1)
    records_path: str = ""
    primary_key: list[str] = Field(min_length=1)
    cursor_field: str | None = None
    cursor_param: str | None = None
    params: dict[str, str] = Field(default_factory=dict)
    pagination: Pagination = NoPagination(type="none")


class RestApiConfig(ServiceConfig):
    schema_: Name = Field(alias="schema")
    base_url: Annotated[str, Field(pattern=r"^https?://[^\s/?#]+(/[^\s]*)?$", max_length=2048)]
    auth: Auth = NoAuth(type="none")
    headers: dict[str, str] = Field(default_factory=dict)
    page_size: int = Field(default=100, ge=1, le=10_000)
    tables: list[RestApiTable] = Field(min_length=1)

    @field_validator("base_url")
    @classmethod
    def _port_in_range(cls, value: str) -> str:
        try:
            port = urlsplit(value).port
        except ValueError:
            port = -1
        if port is not None and not 1 <= port <= 65535:
            raise ValueError("must have a port from 1 to 65535")
        return value


# ---- requests with retries -------------------------------------------------------------------------

MAX_ATTEMPTS = 5  # for 5xx and connection errors
MAX_RATE_LIMIT_WAITS = 20  # 429s waited out within one run before giving the run up
BACKOFF_BASE = 1.0
BACKOFF_CAP = 30.0
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
_RETRYABLE = frozenset({500, 502, 503, 504, 408})

# Indirection so that tests can observe waits instead of sleeping.
_sleep = time.sleep


def _now() -> datetime:
    return datetime.now(UTC)


def _backoff(attempt: int) -> float:
    return min(BACKOFF_CAP, BACKOFF_BASE * 2.0**attempt) * random.uniform(0.5, 1.0)


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - _now()).total_seconds())


def _path_of(url: str) -> str:
    return urlsplit(url).path or "/"


class _Client:
    """The guarded session plus the retry policy and error mapping of one connection."""

    def __init__(self, config: RestApiConfig, session: GuardedSession) -> None:
        self.config = config
        self.session = session
        self.host = urlsplit(config.base_url).hostname or config.base_url
        self._secrets = [s for s in _secret_values(config) if s]

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "******")
        return text

    def get(self, url: str, params: dict[str, str | int] | None, deadline: float) -> Reply:
        import requests

        failures = 0
        waits = 0
        while True:
            remaining = deadline - time.monotonic()
            timeout = (min(CONNECT_TIMEOUT, max(1.0, remaining)), min(READ_TIMEOUT, max(1.0, remaining)))
            try:
                reply = self.session.get(url, params=params, timeout=timeout)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if isinstance(exc, requests.exceptions.SSLError):
                    raise
                failures += 1
                self._wait_or_give_up(
                    failures,
                    deadline,
                    f"Could not reach {self.host} ({type(exc).__name__}) for {_path_of(url)}",
                )
                continue
            status = reply.status
            if status < 300:
                return reply
            if status == 429:
                waits += 1
                wait = _retry_after(reply.headers.get("Retry-After"))
                wait = _backoff(waits - 1) if wait is None else wait
                if time.monotonic() + wait > deadline or waits > MAX_RATE_LIMIT_WAITS:
                    raise SourceRateLimited(
                        _now() + timedelta(seconds=wait),
                        f"{self.host} is rate limiting requests (HTTP 429); retrying after {wait:.0f}s",
                    )
                _sleep(wait)
                continue
            if status in (401, 403):
                raise SourceAuthError(
                    f"{self.host} refused the credentials (HTTP {status}) for {_path_of(url)}: "
                    f"{_auth_hint(self.config.auth)}"
                )
            if status in _RETRYABLE:
                failures += 1
                hinted = _retry_after(reply.headers.get("Retry-After"))
                self._wait_or_give_up(
                    failures, deadline, f"{self.host} answered HTTP {status} for {_path_of(url)}", hinted
                )
                continue
            snippet = self.scrub(reply.text(300)).strip()
            raise SourceError(f"{self.host} answered HTTP {status} for {_path_of(url)}: {snippet}")

    def _wait_or_give_up(
        self, failures: int, deadline: float, what: str, hinted: float | None = None
    ) -> None:
        wait = max(_backoff(failures - 1), min(hinted or 0.0, BACKOFF_CAP))
        if failures >= MAX_ATTEMPTS or time.monotonic() + wait > deadline:
            raise SourceError(f"{what} (gave up after {failures} attempts)")
        _sleep(wait)

    def json(self, reply: Reply, table: str) -> Any:
        try:
            return json.loads(reply.content)
        except ValueError:
            snippet = self.scrub(reply.text(120)).strip()
            raise SourceError(
                f"The response for table '{table}' ({_path_of(reply.url)}) is not JSON: {snippet!r}"
            ) from None


def _secret_values(config: RestApiConfig) -> list[str]:
    """Every form a secret can take in text a server sends back (an echoed Authorization header too)."""
    auth = config.auth
    if isinstance(auth, BasicAuth):
        import base64

        encoded = base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode()
        return [encoded, auth.password]
    if isinstance(auth, BearerAuth):
        return [auth.token]
    if isinstance(auth, ApiKeyAuth):
        return [auth.api_key]
    return []


def _auth_hint(auth: NoAuth | BasicAuth | BearerAuth | ApiKeyAuth) -> str:
    if isinstance(auth, BasicAuth):
        return f"check auth.username ('{auth.username}') and auth.password"
    if isinstance(auth, BearerAuth):
        return "check auth.token (it may have expired or lack access to this path)"
    if isinstance(auth, ApiKeyAuth):
        return f"check auth.api_key and that the API expects it in the '{auth.header}' header"
    return "the API requires credentials: set auth (basic, bearer or api_key)"


def _session(config: RestApiConfig, **options: Any) -> GuardedSession:
    from sluice.outbound import GuardedSession

    headers = dict(config.headers)
    sensitive: list[str] = []
    basic: tuple[str, str] | None = None
    auth = config.auth
    if isinstance(auth, BearerAuth):
        headers["Authorization"] = f"Bearer {auth.token}"
    elif isinstance(auth, ApiKeyAuth):
        headers[auth.header] = auth.api_key
        sensitive.append(auth.header)
    elif isinstance(auth, BasicAuth):
        basic = (auth.username, auth.password)
    return GuardedSession(headers=headers, auth=basic, sensitive_headers=sensitive, **options)


# ---- pages ----------------------------------------------------------------------------------------


def _dig(body: Any, path: str) -> Any:
    """The value at a dot path (`data`, `result.items`, `pages.0.rows`); KeyError when absent."""
    value = body
    for part in path.split(".") if path else ():
        if isinstance(value, dict):
            value = value[part]
        elif isinstance(value, list) and part.lstrip("-").isdigit():
            try:
                value = value[int(part)]
            except IndexError:
                raise KeyError(part) from None
        else:
            raise KeyError(part)
    return value


def _records(body: Any, table: RestApiTable) -> list[dict[str, Any]]:
    try:
        records = _dig(body, table.records_path)
    except KeyError:
        found = sorted(body)[:10] if isinstance(body, dict) else type(body).__name__
        raise SourceError(
            f"records_path '{table.records_path}' was not found in the response for table '{table.name}' "
            f"(top-level keys: {found})"
        ) from None
    if not isinstance(records, list):
        where = f"records_path '{table.records_path}'" if table.records_path else "The response body"
        hint = f"; its keys are {sorted(records)[:10]}, set records_path" if isinstance(records, dict) else ""
        raise SourceError(
            f"{where} for table '{table.name}' is a {type(records).__name__}, not a list of rows{hint}"
        )
    if not all(type(row) is dict for row in records):
        raise SourceError(f"The rows of table '{table.name}' must be JSON objects")
    return records


def _next_value(body: Any, path: str) -> Any:
    try:
        value = _dig(body, path)
    except KeyError:
        return None
    return value if value not in ("", None) else None


def _max(values: list[Any]) -> Any:
    if not values:
        return None
    try:
        return max(values)
    except TypeError:  # mixed types: compare their JSON text rather than fail the sync
        return max(values, key=lambda v: json.dumps(v))


def _later(a: Any, b: Any) -> Any:
    """The larger of two cursor values (None is smaller than anything)."""
    if a is None:
        return b
    if b is None:
        return a
    return _max([a, b])


def _table_url(config: RestApiConfig, table: RestApiTable) -> str:
    return config.base_url.rstrip("/") + "/" + table.path.lstrip("/")


def _first_params(config: RestApiConfig, table: RestApiTable, since: Any) -> dict[str, str | int]:
    params: dict[str, str | int] = dict(table.params)
    if since is not None and table.cursor_param:
        params[table.cursor_param] = since if isinstance(since, str) else json.dumps(since)
    pagination = table.pagination
    if isinstance(pagination, PagePagination | NextLinkPagination | LinkHeaderPagination | CursorPagination):
        if pagination.size_param:
            params[pagination.size_param] = config.page_size
    elif isinstance(pagination, OffsetPagination):
        params[pagination.limit_param] = config.page_size
    return params


def _pages(
    client: _Client, table: RestApiTable, since: Any, position: dict[str, Any] | None, deadline: float
) -> Iterator[tuple[list[dict[str, Any]], dict[str, Any] | None]]:
    """(rows, position of the next page or None on the last page), from `position` on."""
    config = client.config
    url = _table_url(config, table)
    params = _first_params(config, table, since)
    pagination = table.pagination
    position = dict(position or {})
    while True:
        if isinstance(pagination, (NextLinkPagination, LinkHeaderPagination)) and "url" in position:
            reply = client.get(position["url"], None, deadline)
        else:
            page_params = dict(params)
            if isinstance(pagination, CursorPagination) and "token" in position:
                page_params[pagination.cursor_param] = position["token"]
            elif isinstance(pagination, PagePagination):
                page_params[pagination.page_param] = position.get("page", pagination.start_page)
            elif isinstance(pagination, OffsetPagination):
                page_params[pagination.offset_param] = position.get("offset", 0)
            reply = client.get(url, page_params, deadline)
        body = client.json(reply, table.name) if reply.content.strip() else None
        rows = _records(body, table) if body is not None else []  # an empty body (204) has no rows
        following: dict[str, Any] | None = None
        if isinstance(pagination, NextLinkPagination):
            link = _next_value(body, pagination.next_path)
            if isinstance(link, str) and urljoin(reply.url, link) != reply.url:
                following = {"url": urljoin(reply.url, link)}
        elif isinstance(pagination, LinkHeaderPagination):
            link = reply.next_link()
            if link and link != reply.url:
                following = {"url": link}
        elif isinstance(pagination, CursorPagination):
            token = _next_value(body, pagination.cursor_path)
            if token is not None and token != position.get("token"):
                following = {"token": token if isinstance(token, (str, int)) else json.dumps(token)}
        elif isinstance(pagination, PagePagination):
            # Only an empty page ends: a server may cap the page size below the one asked for.
            if rows:
                following = {"page": position.get("page", pagination.start_page) + 1}
        elif isinstance(pagination, OffsetPagination) and rows:
            following = {"offset": position.get("offset", 0) + len(rows)}
        yield rows, following
        if following is None:
            return
        position = following


def _with_cursors(
    table: RestApiTable, rows: list[dict[str, Any]], since: Any
) -> tuple[list[dict[str, Any]], Any]:
    """The rows to keep and the largest cursor value among them."""
    field_name = table.cursor_field
    if not field_name:
        return rows, None
    if since is not None and not table.cursor_param:
        # The API cannot filter: drop rows older than the saved cursor ourselves (>= keeps ties).
        rows = [r for r in rows if (v := r.get(field_name)) is None or _later(v, since) == v]
    return rows, _max([v for r in rows if (v := r.get(field_name)) is not None])


# ---- the three steps ------------------------------------------------------------------------------


def tables(config: dict[str, Any]) -> list[TableSpec]:
    parsed = _parse(config)
    return [TableSpec(t.name, tuple(t.primary_key)) for t in parsed.tables]


def _parse(config: dict[str, Any]) -> RestApiConfig:
    try:
        return RestApiConfig.model_validate(config)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors()[:5])
        raise SourceError(f"The rest_api config is not valid ({fields})") from None


def extract(config: dict[str, Any], state: dict[str, Any], deadline: float) -> Iterator[Operation]:
    parsed = _parse(config)
    saved: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (state.get("tables") or {}).items()}
    run: dict[str, Any] = dict(state.get("run") or {})
    done: list[str] = list(run.get("done") or [])
    with _session(parsed) as session:
        client = _Client(parsed, session)
        for table in parsed.tables:
            if table.name in done:
                continue
            resuming = run.get("table") == table.name
            since = run.get("since") if resuming else saved.get(table.name, {}).get("cursor")
            high = run.get("max") if resuming else None
            position = run.get("next") if resuming else None
            for rows, following in _pages(client, table, since, position, deadline):
                kept, page_max = _with_cursors(table, rows, since)
                high = _later(high, page_max)
                if kept:
                    yield Upserts(table.name, kept)
                if following is not None:
                    progress = {
                        "done": done,
                        "table": table.name,
                        "since": since,
                        "max": high,
                        "next": following,
                    }
                    yield Checkpoint({"tables": saved, "run": progress})
            if table.cursor_field:
                cursor = _later(since, high)
                # A new dict: the checkpoints already yielded must not change under the engine.
                saved = {**saved, table.name: {"cursor": cursor} if cursor is not None else {}}
            done = [*done, table.name]
            yield Checkpoint({"tables": saved, "run": {"done": done}})
            run = {}
    yield Checkpoint({"tables": saved})


def setup_tests(config: dict[str, Any], options: SetupTestOptions) -> list[SetupTestResult]:
    return _SetupRun(_parse(config), options).run()


class _Fatal(Exception):
    """A setup test failed in a way that makes the later ones meaningless."""


class _SetupRun:
    def __init__(self, config: RestApiConfig, options: SetupTestOptions) -> None:
        self.config = config
        self.options = options
        self.deadline = time.monotonic() + options.timeout
        self.results: list[SetupTestResult] = []
        self.titles = [
            "Resolving host",
            "Connecting",
            "Authenticating",
            *[f"Fetching {t.name}" for t in config.tables],
        ]

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def add(
        self, status: Literal["PASSED", "WARNING", "FAILED", "SKIPPED"], message: str, details: Any = None
    ) -> None:
        self.results.append(
            SetupTestResult(
                title=self.titles[len(self.results)], status=status, message=message, details=details
            )
        )

    def fatal(self, message: str, details: Any = None) -> _Fatal:
        title = self.titles[len(self.results)]
        self.add("FAILED", message, details)
        return _Fatal(title)

    def run(self) -> list[SetupTestResult]:
        try:
            self._run()
        except _Fatal as failed:
            while len(self.results) < len(self.titles):
                self.add("SKIPPED", f"Skipped because '{failed}' failed")
        return self.results

    def _run(self) -> None:
        from sluice.outbound import CertificateNotTrusted, OutboundError, probe, resolve

        base = self.config.base_url
        parts = urlsplit(base)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            address = resolve(host, port)
        except OutboundError as exc:
            raise self.fatal(str(exc)) from None
        self.add("PASSED", f"{host} resolves to {address}", {"host": host, "address": address})

        try:
            found = probe(base, trust_certificates=self.options.trust_certificates, timeout=self._budget(10))
        except CertificateNotTrusted as exc:
            raise self.fatal(str(exc), {"fingerprint": exc.fingerprint}) from None
        except OutboundError as exc:
            raise self.fatal(str(exc)) from None
        details = {"address": found.address, "port": found.port, "tls": found.tls}
        if found.tls:
            details |= {"tls_version": found.tls_version, "certificate_sha256": found.fingerprint}
        if found.tls and not found.verified:
            self.add(
                "WARNING",
                f"The TLS certificate of {host} is not signed by a trusted authority; it is trusted because "
                f"trust_certificates is set (SHA-256 {found.fingerprint})",
                details,
            )
        else:
            self.add(
                "PASSED", f"Connected to {host}:{found.port}" + (" over TLS" if found.tls else ""), details
            )

        options: dict[str, Any] = {"total_timeout": max(1.0, self.remaining())}
        if found.tls and not found.verified:
            options["trusted_fingerprint"] = found.fingerprint
        with _session(self.config, **options) as session:
            client = _Client(self.config, session)
            first = self._fetch(client, self.config.tables[0])
            if not isinstance(first, str) and first.status in (401, 403):
                raise self.fatal(
                    f"The API refused the credentials (HTTP {first.status}): {_auth_hint(self.config.auth)}",
                    {"status": first.status},
                )
            if isinstance(first, str):
                raise self.fatal(first)
            self.add(
                "PASSED",
                "The API accepted the request"
                if self.config.auth.type != "none"
                else "No credentials needed",
                {"status": first.status, "auth": self.config.auth.type},
            )
            for index, table in enumerate(self.config.tables):
                reply = first if index == 0 else self._fetch(client, table)
                self._check_table(client, table, reply)

    def _budget(self, cap: float) -> float:
        remaining = self.remaining()
        if remaining <= 0.2:
            raise self.fatal(f"The setup tests ran out of time (timeout {self.options.timeout:.0f}s)")
        return min(cap, remaining)

    def _fetch(self, client: _Client, table: RestApiTable) -> Reply | str:
        """One page of a table, or why it could not be fetched."""
        import requests

        from sluice.outbound import OutboundError

        params = _first_params(self.config, table, None)
        pagination = table.pagination
        if isinstance(pagination, PagePagination):
            params[pagination.page_param] = pagination.start_page
        elif isinstance(pagination, OffsetPagination):
            params[pagination.offset_param] = 0
        budget = self._budget(READ_TIMEOUT)
        try:
            return client.session.get(
                _table_url(self.config, table), params=params, timeout=(min(10, budget), budget)
            )
        except OutboundError as exc:
            return str(exc)
        except requests.RequestException as exc:
            return f"Could not fetch {table.path} from {client.host} ({type(exc).__name__})"

    def _check_table(self, client: _Client, table: RestApiTable, reply: Reply | str) -> None:
        if isinstance(reply, str):
            self.add("FAILED", reply)
            return
        path = table.path
        if reply.status == 429:
            self.add(
                "WARNING", f"GET {path} was rate limited (HTTP 429); syncs wait and retry", {"status": 429}
            )
            return
        if reply.status == 404:
            self.add("FAILED", f"GET {path} answered HTTP 404: check the table's path", {"status": 404})
            return
        if reply.status >= 300:
            snippet = client.scrub(reply.text(200)).strip()
            self.add(
                "FAILED", f"GET {path} answered HTTP {reply.status}: {snippet}", {"status": reply.status}
            )
            return
        try:
            rows = _records(client.json(reply, table.name), table)
        except SourceError as exc:
            self.add("FAILED", str(exc), {"status": reply.status})
            return
        fields = sorted(rows[0])[:50] if rows else []
        details = {"status": reply.status, "rows": len(rows), "fields": fields}
        if not rows:
            self.add(
                "WARNING",
                f"GET {path} returned no rows yet; the sync will load rows once there are some",
                details,
            )
            return
        missing = [k for k in table.primary_key if k not in rows[0]]
        if table.cursor_field and table.cursor_field not in rows[0]:
            missing.append(table.cursor_field)
        if missing:
            self.add(
                "WARNING",
                f"The rows of {path} have no field {', '.join(repr(m) for m in missing)}: check primary_key "
                "and cursor_field",
                details,
            )
            return
        self.add("PASSED", f"Read {len(rows)} rows from the first page of {path}", details)


SERVICE = Service(
    name="rest_api",
    title="REST API",
    description="Any paginated JSON HTTP API",
    config_model=RestApiConfig,
    naming_keys=("schema",),
    secret_paths=frozenset(secret_paths(RestApiConfig)),
    tables=tables,
    extract=extract,
    setup_tests=setup_tests,
)
