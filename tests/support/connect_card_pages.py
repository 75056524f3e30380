"""Drives the hosted Connect Card page in-process: events from events/connect_card_page.json, HTML
replies, and a small form reader that submits what a browser would."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from local.functions import load_module
from local.lambda_context import LocalContext
from tests.support.api_events import sample_event

OP = "connect_card_page"


@dataclass
class HtmlReply:
    status: int
    body: str
    headers: dict[str, str]

    def form(self) -> dict[str, str]:
        reader = FormReader()
        reader.feed(self.body)
        return reader.fields


def page_event(
    method: str = "GET",
    query: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    content_type: str = "application/x-www-form-urlencoded",
) -> dict[str, Any]:
    event = copy.deepcopy(sample_event(OP))
    event["httpMethod"] = method
    event["requestContext"]["httpMethod"] = method
    event["queryStringParameters"] = query or None
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None
    if form is not None:
        event["body"] = urlencode(form)
        event["headers"] = {**event["headers"], "Content-Type": content_type}
    return event


def invoke_page(event: dict[str, Any]) -> HtmlReply:
    module = load_module(f"functions/{OP}")
    response = module.lambda_handler(event, LocalContext(function_name=OP))
    headers = {
        **(response.get("headers") or {}),
        **{k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()},
    }
    return HtmlReply(status=response["statusCode"], body=response["body"], headers=headers)


def get_page(query: dict[str, str] | None) -> HtmlReply:
    return invoke_page(page_event("GET", query))


def post_page(form: dict[str, str], query: dict[str, str] | None = None) -> HtmlReply:
    return invoke_page(page_event("POST", query, form))


def query_of(uri: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(uri).query, keep_blank_values=True))


class FormReader(HTMLParser):
    """The fields a browser would submit from the page's form: named, enabled controls; checked boxes;
    the selected option of each select; the text of each textarea."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self._select: str | None = None
        self._first_option: str | None = None
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        named = "name" in a and "disabled" not in a
        if tag == "input" and named:
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.fields[a["name"]] = a.get("value", "on")
            else:
                self.fields[a["name"]] = a.get("value", "")
        elif tag == "select" and named:
            self._select, self._first_option = a["name"], None
        elif tag == "option" and self._select is not None:
            value = a.get("value", "")
            if self._first_option is None:
                self._first_option = value
                self.fields.setdefault(self._select, value)
            if "selected" in a:
                self.fields[self._select] = value
        elif tag == "textarea" and named:
            self._textarea, self._text = a["name"], []

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self.fields[self._textarea] = "".join(self._text)
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text.append(data)
