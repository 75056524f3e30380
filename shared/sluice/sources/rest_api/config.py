"""The `rest_api` config: where the API is, how to authenticate, the tables and how each pages."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from sluice.sources.base import Name, Secret, ServiceConfig
from sluice.sources.rest_api.pagination import NoPagination, Pagination


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

    def credentials(self) -> Credentials:
        return Credentials(basic=(self.username, self.password))

    def secret_values(self) -> list[str]:
        # An echoed Authorization header shows the encoded form.
        encoded = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return [encoded, self.password]

    def hint(self) -> str:
        return f"check auth.username ('{self.username}') and auth.password"


class BearerAuth(ServiceConfig):
    type: Literal["bearer"]
    token: Secret

    def credentials(self) -> Credentials:
        return Credentials(headers={"Authorization": f"Bearer {self.token}"})

    def secret_values(self) -> list[str]:
        return [self.token]

    def hint(self) -> str:
        return "check auth.token (it may have expired or lack access to this path)"


class ApiKeyAuth(ServiceConfig):
    type: Literal["api_key"]
    header: str = "X-API-Key"
    api_key: Secret

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


def secret_values(config: RestApiConfig) -> list[str]:
    """Every form a secret can take in text a server sends back (an echoed Authorization header too)."""
    return [s for s in config.auth.secret_values() if s]
