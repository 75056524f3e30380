"""Pagination styles of the `rest_api` source: one class per style, config and behaviour together.

A style knows three things (dlt's paginators are the model):
- `size_params(page_size)`: the query parameters that ask for `page_size` rows, sent with every
  request built from the table's URL;
- `request(position)`: the request for the page at `position` (`{}` is the first page): either
  parameters added to the table's URL, or a whole URL to fetch as it is (a next link);
- `following(position, page)`: the position of the page after `page`, or None when it was the last.

A position is a small JSON object kept in the sync state so a continuation resumes at that page:
`{"url": ...}`, `{"token": ...}`, `{"page": n}` or `{"offset": n}`. A new style is one class here
plus its name in `Pagination`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urljoin

from pydantic import Field

from sluice.sources.base import ADVANCED, ServiceConfig

if TYPE_CHECKING:
    from sluice.outbound import Reply

Params = dict[str, str | int]
Position = dict[str, Any]


@dataclass(frozen=True)
class PageRequest:
    """Parameters for the table's URL, or (`url` set) a URL that carries its own parameters."""

    params: Params = field(default_factory=dict)
    url: str | None = None


@dataclass(frozen=True)
class Page:
    """One answered page: the reply, its parsed body (None when empty) and its rows."""

    reply: Reply
    body: Any
    rows: list[dict[str, Any]]


def dig(body: Any, path: str) -> Any:
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


def _value_at(body: Any, path: str) -> Any:
    """The value at a dot path, or None when it is absent, empty or null."""
    try:
        value = dig(body, path)
    except KeyError:
        return None
    return value if value not in ("", None) else None


class Paginator(ServiceConfig):
    """The behaviour every style provides (see the module docstring)."""

    def size_params(self, page_size: int) -> Params:
        return {}

    def request(self, position: Position) -> PageRequest:
        return PageRequest()

    def following(self, position: Position, page: Page) -> Position | None:
        return None


class NoPagination(Paginator):
    type: Literal["none"]


def _sized(size_param: str | None, page_size: int) -> Params:
    """The optional page-size parameter most styles have."""
    return {size_param: page_size} if size_param else {}


class _FollowsLinks(Paginator):
    """A style whose next page is a URL the server gives (query included)."""

    def request(self, position: Position) -> PageRequest:
        return PageRequest(url=position["url"]) if "url" in position else PageRequest()

    def next_url(self, page: Page) -> str | None:
        raise NotImplementedError

    def following(self, position: Position, page: Page) -> Position | None:
        link = self.next_url(page)
        return {"url": link} if link and link != page.reply.url else None


class NextLinkPagination(_FollowsLinks):
    type: Literal["next_link"]
    next_path: str = "next"
    # The query parameter that asks for `page_size` rows on the first page (links carry it after).
    size_param: Annotated[str | None, ADVANCED] = None

    def size_params(self, page_size: int) -> Params:
        return _sized(self.size_param, page_size)

    def next_url(self, page: Page) -> str | None:
        link = _value_at(page.body, self.next_path)
        return urljoin(page.reply.url, link) if isinstance(link, str) else None


class LinkHeaderPagination(_FollowsLinks):
    type: Literal["link_header"]
    size_param: Annotated[str | None, ADVANCED] = None

    def size_params(self, page_size: int) -> Params:
        return _sized(self.size_param, page_size)

    def next_url(self, page: Page) -> str | None:
        return page.reply.next_link()


class CursorPagination(Paginator):
    type: Literal["cursor"]
    cursor_path: str
    cursor_param: str = "cursor"
    size_param: Annotated[str | None, ADVANCED] = None

    def size_params(self, page_size: int) -> Params:
        return _sized(self.size_param, page_size)

    def request(self, position: Position) -> PageRequest:
        return PageRequest({self.cursor_param: position["token"]} if "token" in position else {})

    def following(self, position: Position, page: Page) -> Position | None:
        token = _value_at(page.body, self.cursor_path)
        if token is None or token == position.get("token"):
            return None
        return {"token": token if isinstance(token, (str, int)) else json.dumps(token)}


class PagePagination(Paginator):
    type: Literal["page"]
    page_param: str = "page"
    size_param: Annotated[str | None, ADVANCED] = None
    start_page: Annotated[int, ADVANCED] = Field(default=1, ge=0, le=1_000_000_000)

    def size_params(self, page_size: int) -> Params:
        return _sized(self.size_param, page_size)

    def request(self, position: Position) -> PageRequest:
        return PageRequest({self.page_param: position.get("page", self.start_page)})

    def following(self, position: Position, page: Page) -> Position | None:
        # Only an empty page ends: a server may cap the page size below the one asked for.
        return {"page": position.get("page", self.start_page) + 1} if page.rows else None


class OffsetPagination(Paginator):
    type: Literal["offset"]
    offset_param: str = "offset"
    limit_param: str = "limit"

    def size_params(self, page_size: int) -> Params:
        return {self.limit_param: page_size}

    def request(self, position: Position) -> PageRequest:
        return PageRequest({self.offset_param: position.get("offset", 0)})

    def following(self, position: Position, page: Page) -> Position | None:
        return {"offset": position.get("offset", 0) + len(page.rows)} if page.rows else None


Pagination = Annotated[
    NoPagination
    | NextLinkPagination
    | LinkHeaderPagination
    | CursorPagination
    | PagePagination
    | OffsetPagination,
    Field(discriminator="type"),
]
