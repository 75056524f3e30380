"""API plumbing shared by every API function: the resolver factory that owns the Fivetran envelope,
error mapping, the /v1/connectors aliases, empty bodies and content types."""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.utilities.typing import LambdaContext

from sluice.api.caller import Caller
from sluice.api.routes import SERVED_METHODS, allowed_methods, canonical_path
from sluice.api.validation import check_json_depth, message_for
from sluice.errors import (
    ConnectionNotFound,
    InvalidInput,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    SluiceError,
    Unauthorized,
    UnsupportedMediaType,
)
from sluice.observability import logger

MAX_BODY_BYTES = 1024 * 1024
_BODY_METHODS = {"POST", "PATCH", "PUT"}
JSON = "application/json"
MULTIPART = "multipart/form-data"


def envelope(data: Any = None, message: str = "Operation performed successfully") -> dict[str, Any]:
    body: dict[str, Any] = {"code": "Success", "message": message}
    if data is not None:
        body["data"] = data
    return body


def created(data: Any, message: str) -> Response[str]:
    return json_response(HTTPStatus.CREATED, envelope(data, message))


def json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=int(status),
        content_type=JSON,
        body=json.dumps(body, separators=(",", ":")),
        headers=headers,
    )


def error_response(error: SluiceError) -> Response[str]:
    return json_response(error.status, {"code": error.code, "message": error.message})


class SluiceResolver(APIGatewayRestResolver):
    """APIGatewayRestResolver that speaks the Fivetran wire contract."""

    def __init__(self, upload_bytes: int = 0) -> None:
        super().__init__(enable_validation=True)
        # A function that takes file uploads (multipart/form-data) up to this many bytes; 0: JSON only.
        self.upload_bytes = upload_bytes
        self.aliased = False
        self.body_was_missing = False
        self.requested_path = "/"

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        try:
            normalized = self._normalize(dict(event))
        except SluiceError as error:
            return {
                "statusCode": int(error.status),
                "headers": {"Content-Type": JSON},
                "body": json.dumps({"code": error.code, "message": error.message}),
                "isBase64Encoded": False,
            }
        return super().resolve(normalized, context)

    def _normalize(self, event: dict[str, Any]) -> dict[str, Any]:
        self.requested_path = event.get("path") or "/"
        path, self.aliased = canonical_path(self.requested_path)
        event["path"] = path
        method = str(event.get("httpMethod", "GET")).upper()
        body = event.get("body")
        self.body_was_missing = body is None or body == ""
        headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
        content_type = (headers.get("content-type") or "").split(";")[0].strip().lower()
        if method in _BODY_METHODS and self.upload_bytes and content_type == MULTIPART:
            # Base64 (as API Gateway passes binary media types) is 4/3 of the bytes.
            if len(body or "") > self.upload_bytes * 4 // 3 + 4096:
                raise PayloadTooLarge(f"Request body is larger than {self.upload_bytes} bytes")
            return event  # the function reads the parts itself
        if method in _BODY_METHODS:
            if len(body or "") > MAX_BODY_BYTES:
                raise PayloadTooLarge(f"Request body is larger than {MAX_BODY_BYTES} bytes")
            if not self.body_was_missing and content_type not in ("", JSON, "*/*"):
                raise UnsupportedMediaType(f"Content-Type '{content_type}' is not supported; send {JSON}")
            if not self.body_was_missing and not event.get("isBase64Encoded"):
                check_json_depth(str(body))  # before the parser, which would recurse that deep
            # Several Fivetran clients send POSTs with no body: read it as {}.
            if self.body_was_missing or not (body or "").strip():
                event["body"] = "{}"
                event["isBase64Encoded"] = False
            # Powertools parses the body only for JSON content types.
            event["headers"] = {**(event.get("headers") or {}), "content-type": JSON}
            event.pop("multiValueHeaders", None)
        return event

    def not_found_error(self, connection_id: str) -> SluiceError:
        error = ConnectionNotFound(connection_id)
        if self.aliased:
            error.code = "NotFound_Connector"
            error.message = f"Connector with id '{connection_id}' doesn't exist"
        return error


def make_resolver(upload_bytes: int = 0) -> SluiceResolver:
    app = SluiceResolver(upload_bytes)

    @app.exception_handler(SluiceError)
    def handle_sluice_error(error: SluiceError) -> Response[str]:
        if isinstance(error, ConnectionNotFound):
            error = app.not_found_error(error.connection_id)
        if error.status >= 500:
            logger.exception("request failed", extra={"code": error.code})
        else:
            logger.info("request refused", extra={"code": error.code, "reason": error.message})
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    def handle_validation_error(error: RequestValidationError) -> Response[str]:
        invalid = InvalidInput(message_for(list(error.errors())))
        logger.info("request refused", extra={"code": invalid.code, "reason": invalid.message})
        return error_response(invalid)

    @app.not_found
    def handle_not_found(_: Exception) -> Response[str]:
        event = app.current_event
        asked = app.requested_path  # as the client sent it, before aliases were resolved
        if allowed_methods(event.path) or event.http_method.upper() not in SERVED_METHODS:
            error: SluiceError = MethodNotAllowed(f"Method {event.http_method} is not allowed on {asked}")
        else:
            error = NotFound(f"No route matches {event.http_method} {asked}")
        return error_response(error)

    @app.exception_handler(Exception)
    def handle_unexpected(error: Exception) -> Response[str]:
        logger.exception("unexpected error")
        return error_response(SluiceError("Internal error"))

    return app


def current_caller(app: APIGatewayRestResolver) -> Caller:
    context = (app.current_event.raw_event.get("requestContext") or {}).get("authorizer") or {}
    account_id, user_id = context.get("account_id"), context.get("user_id")
    if not account_id or not user_id:
        raise Unauthorized("Missing or invalid credentials")
    return Caller(account_id=str(account_id), user_id=str(user_id))
