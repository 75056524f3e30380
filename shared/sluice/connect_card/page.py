"""The hosted Connect Card page (GET/POST /connect-card/setup): a form for one connection's config,
authorised by the link's token, that saves the config, runs the setup tests and sends the person back.

Every value that reaches the HTML goes through `html.escape`; the page has no script at all, its one
<style> block is allowed by hash in the Content-Security-Policy, and forms carry a CSRF token bound to
the link.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from html import escape
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from sluice.api.caller import Caller
from sluice.api.request_models import UpdateConnectionRequest
from sluice.config_secrets import AUTH_POINTER, reveal, secret_box, split_secrets
from sluice.connect_card import cards as connect_card
from sluice.connect_card.form import Form, read_form, render_fields
from sluice.connect_card.form import form_tree as _form_tree
from sluice.connections import operations as connections
from sluice.connections.model import Connection, SetupTestResult
from sluice.connections.setup_tests import test_and_record
from sluice.errors import ConcurrentUpdate, ConnectionNotFound, InvalidInput
from sluice.observability import logger
from sluice.sources import get_service
from sluice.sources.base import SetupTestOptions
from sluice.storage.store import Store

CONTENT_TYPE = "text/html; charset=utf-8"
# Seconds the success page shows the test results before it continues to redirect_uri.
_STATUSES = {"PASSED", "SKIPPED", "WARNING", "FAILED", "JOB_FAILED"}

# The page's style sheet, a file beside this module (package data: the layer ships the whole folder).
_CSS = (Path(__file__).parent / "page.css").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Page:
    """An HTML response: status, document and the headers that keep it safe."""

    status: int
    body: str
    style: str = ""
    location: str | None = None
    extra_headers: dict[str, str] = field(default_factory=dict)

    def headers(self) -> dict[str, str]:
        style_hash = base64.b64encode(hashlib.sha256(self.style.encode()).digest()).decode()
        headers = {
            "Content-Type": CONTENT_TYPE,
            "Content-Security-Policy": (
                f"default-src 'none'; style-src 'sha256-{style_hash}'; img-src 'self' data:; "
                "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
            ),
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            **self.extra_headers,
        }
        if self.location:
            headers["Location"] = self.location
        return headers


def _continue_after() -> int:
    """Seconds the results page shows before it goes on to redirect_uri by itself."""
    from sluice.settings import get_settings

    return get_settings().connect_card_continue_after_seconds


def _document(status: int, title: str, main: str, css: str = "", refresh: str | None = None) -> Page:
    style = _CSS + css
    meta = (
        f'<meta http-equiv="refresh" content="{_continue_after()};url={escape(refresh, quote=True)}">'
        if refresh
        else ""
    )
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="robots" content="noindex">{meta}<title>{escape(title)}</title>'
        f"<style>{style}</style></head><body>"
        '<header class="top">Sluice<span>Connect Card</span></header>'
        f'<main><div class="card">{main}</div></main></body></html>'
    )
    return Page(status=status, body=body, style=style)


def error_page(status: int, title: str, message: str) -> Page:
    main = f'<h1>{escape(title)}</h1><p class="message">{escape(message)}</p>'
    return _document(status, title, main)


def not_found_page() -> Page:
    return error_page(HTTPStatus.NOT_FOUND, "Page not found", "There is nothing here.")


def unexpected_error_page() -> Page:
    return error_page(
        HTTPStatus.INTERNAL_SERVER_ERROR, "Something went wrong", "The page could not be shown; try again."
    )


class _Refused(Exception):
    def __init__(self, page: Page) -> None:
        super().__init__(page.status)
        self.page = page


# ---- the two requests ------------------------------------------------------------------------------


def show(query: Mapping[str, str], store: Store) -> Page:
    """GET: the form (or, with step=continue on a connected connection, the way back to redirect_uri)."""
    try:
        key = connect_card.signing_key()
        claims = _claims(query.get("auth"), key)
        connection = _connection(store, claims)
    except _Refused as refused:
        return refused.page
    if query.get("step") == "continue":
        return _continue(connection, claims)
    return _form_page(HTTPStatus.OK, connection, claims, key, dict(connection.config))


def save(query: Mapping[str, str], form: Form, store: Store) -> Page:
    """POST: save the submitted config, run the setup tests, and show how they went."""
    try:
        key = connect_card.signing_key()
        claims = _claims(_first(form, "auth") or query.get("auth"), key)
        if not connect_card.csrf_ok(claims, _first(form, "csrf"), key):
            logger.info(
                "connect card form refused: bad CSRF token", extra={"connection_id": claims.connection_id}
            )
            return error_page(
                HTTPStatus.FORBIDDEN,
                "This form could not be verified",
                "Nothing was saved. Open the setup link again and resubmit the form.",
            )
        connection = _connection(store, claims)
    except _Refused as refused:
        return refused.page
    service = get_service(connection.service)
    tree = _form_tree(service)
    try:
        config = read_form(tree, form, connection.config, service.naming_keys, claims.all_fields)
    except InvalidInput as invalid:
        return _form_page(
            HTTPStatus.BAD_REQUEST, connection, claims, key, dict(connection.config), [invalid.message]
        )
    try:
        # The same rules as PATCH: validation, naming keys, and "******" keeping the stored secret.
        saved = connections.update(
            Caller(account_id=claims.account_id, user_id=claims.user_id),
            connection.id,
            # The tests run below, on the plain config in hand, instead of on a decrypted copy.
            UpdateConnectionRequest(config=config, run_setup_tests=False),
            store,
        )
    except InvalidInput as invalid:
        return _form_page(HTTPStatus.BAD_REQUEST, connection, claims, key, config, [invalid.message])
    except ConnectionNotFound:
        return _gone()
    except ConcurrentUpdate:
        return error_page(
            HTTPStatus.CONFLICT,
            "The connection changed meanwhile",
            "Nothing was saved. Reload the page and try again.",
        )
    tested = test_and_record(
        store,
        claims.account_id,
        saved.id,
        SetupTestOptions(),
        secret_box().decrypt,
        config=_plain_config(saved, config),
    )
    if tested.setup_state == "connected":
        return _connected_page(tested, claims)
    return _form_page(
        HTTPStatus.OK,
        tested,
        claims,
        key,
        dict(tested.config),
        notice="The configuration was saved, but the setup tests did not pass. Correct it and try again.",
    )


# ---- pieces ----------------------------------------------------------------------------------------


def _first(form: Form, name: str) -> str | None:
    values = form.get(name)
    return values[-1] if values else None


def _claims(token: str | None, key: bytes) -> connect_card.CardClaims:
    try:
        return connect_card.verify_token(token, key)
    except connect_card.CardTokenExpired as expired:
        raise _Refused(
            error_page(HTTPStatus.UNAUTHORIZED, "This setup link has expired", expired.message)
        ) from None
    except connect_card.CardTokenError as invalid:
        raise _Refused(
            error_page(HTTPStatus.UNAUTHORIZED, "This setup link is not valid", invalid.message)
        ) from None


def _gone() -> Page:
    return error_page(
        HTTPStatus.FORBIDDEN,
        "This setup link does not match a connection",
        "The connection does not exist or does not belong to the account that made this link.",
    )


def _connection(store: Store, claims: connect_card.CardClaims) -> Connection:
    try:
        return store.get_connection(claims.account_id, claims.connection_id)
    except ConnectionNotFound:
        raise _Refused(_gone()) from None


def _plain_config(saved: Connection, submitted: dict[str, Any]) -> dict[str, Any]:
    """The saved config with its secrets: the ones just typed as they are, the kept ones decrypted."""
    paths = get_service(saved.service).secret_paths
    _, typed = split_secrets(submitted, paths)
    kept = {p: c for p, c in saved.secrets.items() if p != AUTH_POINTER and p not in typed}
    plain = {**(secret_box().decrypt(saved.id, kept) if kept else {}), **typed}
    return reveal(saved.config, plain)


def _continue_link(token: str) -> str:
    # Relative to the page itself, so it works behind any stage or custom domain.
    return "?" + urlencode({"auth": token, "step": "continue"})


def _redirect_target(connection: Connection, claims: connect_card.CardClaims) -> str | None:
    if not claims.redirect_uri:
        return None
    return connect_card.with_query(claims.redirect_uri, id=connection.id)


def _continue(connection: Connection, claims: connect_card.CardClaims) -> Page:
    target = _redirect_target(connection, claims)
    if connection.setup_state != "connected":
        return error_page(
            HTTPStatus.CONFLICT,
            "Setup is not finished",
            "The setup tests have not passed yet. Go back to the form, correct the configuration and "
            "save it.",
        )
    if target is None:
        return error_page(
            HTTPStatus.OK, "Setup complete", "The connection is set up. You can close this window."
        )
    return Page(status=HTTPStatus.SEE_OTHER, body="", location=target)


def _results(results: list[SetupTestResult] | None) -> str:
    if not results:
        return ""
    items = []
    for result in results:
        status = result.status if result.status in _STATUSES else "FAILED"
        message = f"<p>{escape(result.message)}</p>" if result.message else ""
        items.append(
            f'<li class="test test-{status.lower()}"><span class="badge">{escape(status)}</span>'
            f"<div><strong>{escape(result.title)}</strong>{message}</div></li>"
        )
    return (
        f'<section class="results" id="setup-tests"><h2>Setup tests</h2><ul>{"".join(items)}</ul></section>'
    )


def _status_line(connection: Connection) -> str:
    state = connection.setup_state
    return (
        f'<p class="sub">Connection <code>{escape(connection.id)}</code> · schema '
        f"<code>{escape(connection.schema_name)}</code> · status "
        f'<span class="state state-{escape(state)}" id="setup-state">{escape(state)}</span></p>'
    )


def _guide(connection: Connection, claims: connect_card.CardClaims) -> str:
    if claims.hide_setup_guide:
        return ""
    service = get_service(connection.service)
    return (
        f'<aside class="guide"><h2>Setup guide</h2><p>{escape(service.description)}.</p><ul>'
        '<li>Fields marked <span class="req">*</span> are required.</li>'
        "<li>Secrets are encrypted when saved and never shown again. Leave a secret blank to keep the "
        "stored value.</li>"
        "<li>Saving runs the setup tests; when they pass you are sent back to where you came from.</li>"
        "</ul></aside>"
    )


def _form_page(
    status: int,
    connection: Connection,
    claims: connect_card.CardClaims,
    key: bytes,
    values: dict[str, Any],
    errors: list[str] | None = None,
    notice: str | None = None,
) -> Page:
    service = get_service(connection.service)
    fields = render_fields(
        _form_tree(service), values, connection.config, service.naming_keys, claims.all_fields
    )
    token = connect_card.issue_token(claims, key)  # the same claims sign to the same token
    error_box = (
        '<div class="errors" role="alert"><ul>'
        + "".join(f"<li>{escape(e)}</li>" for e in errors)
        + "</ul></div>"
        if errors
        else ""
    )
    notice_box = f'<div class="notice">{escape(notice)}</div>' if notice else ""
    csrf = connect_card.csrf_token(claims, key)
    main = (
        f"<h1>Set up {escape(service.title)}</h1>{_status_line(connection)}{error_box}{notice_box}"
        f"{_results(connection.setup_tests)}"
        '<div class="layout"><form method="post" class="config" autocomplete="off">'
        f'<input type="hidden" name="auth" value="{escape(token, quote=True)}">'
        f'<input type="hidden" name="csrf" value="{escape(csrf, quote=True)}">'
        f"{fields.html}"
        '<div class="actions"><button type="submit" id="save">Save &amp; test</button></div></form>'
        f"{_guide(connection, claims)}</div>"
    )
    return _document(status, f"Set up {service.title}", main, fields.css)


def _connected_page(connection: Connection, claims: connect_card.CardClaims) -> Page:
    service = get_service(connection.service)
    token = connect_card.issue_token(claims, connect_card.signing_key())
    target = _redirect_target(connection, claims)
    if target:
        where = urlsplit(target).netloc
        follow = (
            f'<p class="notice">Setup tests passed. Continuing to <strong>{escape(where)}</strong> in '
            f"{_continue_after()} seconds.</p>"
            f'<p><a class="button" id="continue" href="{escape(_continue_link(token), quote=True)}">'
            "Continue</a></p>"
        )
        refresh: str | None = _continue_link(token)
    else:
        follow = '<p class="notice">Setup tests passed. You can close this window.</p>'
        refresh = None
    main = (
        f"<h1>{escape(service.title)} is connected</h1>{_status_line(connection)}"
        f"{_results(connection.setup_tests)}{follow}"
    )
    return _document(HTTPStatus.OK, f"{service.title} is connected", main, refresh=refresh)
