"""GET and POST /connect-card/setup: the hosted Connect Card page, authorised by its link's token (no API
key: the route has no authorizer). HTML in, HTML out; the page itself lives in sluice.connect_card.page."""

from __future__ import annotations

from urllib.parse import parse_qs

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response

from sluice.connect_card import page as connect_card_page
from sluice.connect_card.cards import SETUP_PATH
from sluice.connect_card.page import Page, error_page
from sluice.observability import api_handler, logger
from sluice.storage.store import get_store

# A plain resolver: the shared one speaks JSON, and this page reads form posts and answers HTML.
app = APIGatewayRestResolver()

MAX_FORM_BYTES = 256 * 1024
MAX_FORM_FIELDS = 2000
FORM = "application/x-www-form-urlencoded"


def _respond(page: Page) -> Response[str]:
    return Response(
        status_code=int(page.status),
        content_type=connect_card_page.CONTENT_TYPE,
        body=page.body,
        headers=page.headers(),
    )


def _query() -> dict[str, str]:
    return {k: v for k, v in (app.current_event.query_string_parameters or {}).items() if v is not None}


@app.get(SETUP_PATH)
def show_setup() -> Response[str]:
    return _respond(connect_card_page.show(_query(), get_store()))


@app.post(SETUP_PATH)
def save_setup() -> Response[str]:
    content_type = (app.current_event.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type != FORM:
        return _respond(error_page(415, "Unsupported form", "The form must be posted as " + FORM))
    body = app.current_event.decoded_body or ""
    if len(body) > MAX_FORM_BYTES:
        return _respond(error_page(413, "The form is too large", "Nothing was saved."))
    try:
        form = parse_qs(body, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except ValueError:
        return _respond(error_page(413, "The form has too many fields", "Nothing was saved."))
    return _respond(connect_card_page.save(_query(), form, get_store()))


@app.not_found
def not_found(_: Exception) -> Response[str]:
    return _respond(connect_card_page.not_found_page())


@app.exception_handler(Exception)  # type: ignore[untyped-decorator]
def unexpected(_: Exception) -> Response[str]:
    logger.exception("connect card page failed")
    return _respond(connect_card_page.unexpected_error_page())


lambda_handler = api_handler(app)
