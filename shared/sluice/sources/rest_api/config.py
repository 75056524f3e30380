"""The `rest_api` config: where the API is, how to authenticate, the tables and how each pages.

Every header the config puts on a request (the `headers` map, `auth.header`, and the credential
values that become header values) is checked here, at create and update, so that no bad header
reaches the HTTP client and fails every setup test and sync later.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from sluice.sources.base import ADVANCED, Name, Secret, SecretDestination, ServiceConfig
from sluice.sources.rest_api.pagination import NoPagination, Pagination

# RFC 9110 section 5.6.2: a field name is a token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Set by the HTTP client from the request itself; a config may not override how a message is framed.
_RESERVED_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "te", "trailer", "upgrade", "keep-alive"}
)


def header_name_problem(name: str) -> str | None:
    """Why a string cannot be an HTTP header name (None when it can)."""
    shown = repr(name[:60])
    if not name:
        return "a header name is empty"
    if not _TOKEN.fullmatch(name):
        return (
            f"the header name {shown} is not valid: HTTP header names are letters, digits and "
            "!#$%&'*+-.^_`|~ only (no spaces, colons or line breaks)"
        )
    if name.lower() in _RESERVED_HEADERS:
        return f"the header {shown} is set by the HTTP client and can't be configured"
    return None


def header_value_problem(value: str) -> str | None:
    """Why a string cannot be an HTTP header value (None when it can). Never names the value."""
    if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in value):
        return "contains a line break or another control character"
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return "contains characters outside ISO-8859-1 (Latin-1), which HTTP header values can't carry"
    if value != value.strip(" \t"):
        return "starts or ends with whitespace"
    return None


def _checked_value(value: str, what: str) -> str:
    problem = header_value_problem(value)
    if problem:
        raise ValueError(f"{what} {problem}")
    return value


@dataclass(frozen=True)
class Credentials:
    """What an auth setting adds to every request to the API's origin."""

    headers: dict[str, str] = field(default_factory=dict)
    # Header names that carry a credential (dropped wherever credentials must not go).
    sensitive_headers: tuple[str, ...] = ()
    basic: tuple[str, str] | None = None


class NoAuth(ServiceConfig):
    type: Literal["none"]

    def credentials(self) -> Credentials:
        return Credentials()

    def secret_values(self) -> list[str]:
        return []

    def hint(self) -> str:
        return "the API requires credentials: set auth (basic, bearer or api_key)"


class BasicAuth(ServiceConfig):
    type: Literal["basic"]
    username: str
    password: Secret

    @field_validator("username")
    @classmethod
    def _username_fits_basic_auth(cls, value: str) -> str:
        if ":" in value:
            raise ValueError("a Basic auth username can't contain ':'")
        return _checked_value(value, "the username")

    @field_validator("password")
    @classmethod
    def _password_fits_basic_auth(cls, value: str) -> str:
        return _checked_value(value, "the password")

    def credentials(self) -> Credentials:
        return Credentials(basic=(self.username, self.password))

    def secret_values(self) -> list[str]:
        # An echoed Authorization header shows the encoded form.
        encoded = base64.b64encode(f"{self.username}:{self.password}".encode("latin-1")).decode()
        return [encoded, self.password]

    def hint(self) -> str:
        return f"check auth.username ('{self.username}') and auth.password"


class BearerAuth(ServiceConfig):
    type: Literal["bearer"]
    token: Secret

    @field_validator("token")
    @classmethod
    def _token_fits_a_header(cls, value: str) -> str:
        return _checked_value(value, "the token")

    def credentials(self) -> Credentials:
        return Credentials(headers={"Authorization": f"Bearer {self.token}"})

    def secret_values(self) -> list[str]:
        return [self.token]

    def hint(self) -> str:
        return "check auth.token (it may have expired or lack access to this path)"


class ApiKeyAuth(ServiceConfig):
    type: Literal["api_key"]
    header: Annotated[str, ADVANCED] = "X-API-Key"
    api_key: Secret

    @field_validator("header")
    @classmethod
    def _header_is_a_header_name(cls, value: str) -> str:
        problem = header_name_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("api_key")
    @classmethod
    def _key_fits_a_header(cls, value: str) -> str:
        return _checked_value(value, "the API key")

    def credentials(self) -> Credentials:
        return Credentials(headers={self.header: self.api_key}, sensitive_headers=(self.header,))

    def secret_values(self) -> list[str]:
        return [self.api_key]

    def hint(self) -> str:
        return f"check auth.api_key and that the API expects it in the '{self.header}' header"


Auth = Annotated[NoAuth | BasicAuth | BearerAuth | ApiKeyAuth, Field(discriminator="type")]


class RestApiTable(ServiceConfig):
    name: Name
    path: str = Field(min_length=1)
    records_path: str = ""
    primary_key: list[str] = Field(min_length=1)
    cursor_field: str | None = None
    cursor_param: Annotated[str | None, ADVANCED] = None
    params: Annotated[dict[str, str], ADVANCED] = Field(default_factory=dict)
    pagination: Pagination = NoPagination(type="none")


class RestApiConfig(ServiceConfig):
    schema_: Name = Field(alias="schema")
    # Credentials are sent to this URL's origin only: moving it to another origin needs them again.
    base_url: Annotated[
        str,
        Field(pattern=r"^https?://[^\s/?#]+(/[^\s]*)?$", max_length=2048),
        SecretDestination(compare="origin"),
    ]
    auth: Auth = NoAuth(type="none")
    headers: Annotated[dict[str, str], ADVANCED] = Field(default_factory=dict)
    page_size: Annotated[int, ADVANCED] = Field(default=100, ge=1, le=10_000)
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

    @field_validator("headers")
    @classmethod
    def _headers_are_valid_http(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            problem = header_name_problem(name)
            if problem:
                raise ValueError(problem)
            problem = header_value_problem(value)
            if problem:
                raise ValueError(f"the value of header {name!r} {problem}")
        return headers


def secret_values(config: RestApiConfig) -> list[str]:
    """Every form a secret can take in text a server sends back (an echoed Authorization header too)."""
    return [s for s in config.auth.secret_values() if s]
