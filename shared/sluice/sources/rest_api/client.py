"""Requests of the `rest_api` source: the guarded session, the retry policy and the error mapping.

Credentials go only to the origin (scheme, host, port) of `base_url`. A URL the server hands us
(a next link, a `Link` header) that points at another origin fails the sync with a clear reason
instead of being fetched; the session itself also never attaches credentials to another origin.
"""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sluice.sources.base import SourceAuthError, SourceError, SourceRateLimited
from sluice.sources.rest_api.config import RestApiConfig, secret_values

if TYPE_CHECKING:
    from sluice.outbound import GuardedSession, Reply

# `requests` and `sluice.outbound` are imported where they are used: the API functions import this
# package for its config model only, and must not pay for an HTTP client at cold start.

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


def path_of(url: str) -> str:
    return urlsplit(url).path or "/"


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of a URL, for messages (no user info, path or query)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def session_for(config: RestApiConfig, **options: Any) -> GuardedSession:
    """A guarded session that sends the config's headers, and its credentials to base_url's origin only."""
    from sluice.outbound import GuardedSession

    credentials = config.auth.credentials()
    return GuardedSession(
        headers={**config.headers, **credentials.headers},
        auth=credentials.basic,
        sensitive_headers=credentials.sensitive_headers,
        credential_origin=config.base_url,
        **options,
    )


class Client:
    """The guarded session plus the retry policy and error mapping of one connection."""

    def __init__(self, config: RestApiConfig, session: GuardedSession) -> None:
        self.config = config
        self.session = session
        self.host = urlsplit(config.base_url).hostname or config.base_url
        from sluice.config_secrets import Scrubber  # config_secrets imports the source registry

        self._scrubber = Scrubber(secret_values(config))

    def scrub(self, text: str) -> str:
        return self._scrubber.text(text)

    def check_origin(self, url: str) -> None:
        """Refuse a URL outside base_url's origin: the credentials must not go there."""
        from sluice.outbound import same_origin

        if not same_origin(url, self.config.base_url):
            raise SourceError(
                f"The API sent a next-page link to {origin_of(url)}, another origin than base_url "
                f"({origin_of(self.config.base_url)}). Sluice sends credentials only to the origin of "
                "base_url, so the sync stops here: set base_url to the origin the API pages on"
            )

    def get(self, url: str, params: dict[str, str | int] | None, deadline: float) -> Reply:
        import requests

        self.check_origin(url)
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
                    f"Could not reach {self.host} ({type(exc).__name__}) for {path_of(url)}",
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
                    f"{self.host} refused the credentials (HTTP {status}) for {path_of(url)}: "
                    f"{self.config.auth.hint()}"
                )
            if status in _RETRYABLE:
                failures += 1
                hinted = _retry_after(reply.headers.get("Retry-After"))
                self._wait_or_give_up(
                    failures, deadline, f"{self.host} answered HTTP {status} for {path_of(url)}", hinted
                )
                continue
            snippet = self.scrub(reply.text(300)).strip()
            raise SourceError(f"{self.host} answered HTTP {status} for {path_of(url)}: {snippet}")

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
                f"The response for table '{table}' ({path_of(reply.url)}) is not JSON: {snippet!r}"
            ) from None
