"""The `rest_api` source: any paginated JSON HTTP API."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from sluice.services.base import Secret, Service, ServiceConfig, secret_paths

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


class LinkHeaderPagination(ServiceConfig):
    type: Literal["link_header"]


class CursorPagination(ServiceConfig):
    type: Literal["cursor"]
    cursor_path: str
    cursor_param: str = "cursor"


class PagePagination(ServiceConfig):
    type: Literal["page"]
    page_param: str = "page"
    size_param: str | None = None
    start_page: int = 1


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


SERVICE = Service(
    name="rest_api",
    title="REST API",
    description="Any paginated JSON HTTP API",
    config_model=RestApiConfig,
    naming_keys=("schema",),
    secret_paths=frozenset(secret_paths(RestApiConfig)),
)
