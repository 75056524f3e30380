"""The error hierarchy: each error carries its HTTP status and Fivetran error code."""

from __future__ import annotations

from http import HTTPStatus


class SluiceError(Exception):
    status = HTTPStatus.INTERNAL_SERVER_ERROR
    code = "InternalError"

    def __init__(self, message: str = "Internal error") -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(SluiceError):
    status = HTTPStatus.BAD_REQUEST
    code = "InvalidInput"


class Unauthorized(SluiceError):
    status = HTTPStatus.UNAUTHORIZED
    code = "Unauthorized"


class Forbidden(SluiceError):
    status = HTTPStatus.FORBIDDEN
    code = "Forbidden"


class NotFound(SluiceError):
    status = HTTPStatus.NOT_FOUND
    code = "NotFound"


class ConnectionNotFound(NotFound):
    code = "NotFound_Connection"

    def __init__(self, connection_id: str) -> None:
        super().__init__(f"Connection with id '{connection_id}' doesn't exist")
        self.connection_id = connection_id


class GroupNotFound(NotFound):
    code = "NotFound_Group"

    def __init__(self, group_id: str) -> None:
        super().__init__(f"Group with id '{group_id}' doesn't exist")


class WebhookNotFound(NotFound):
    code = "NotFound_Webhook"

    def __init__(self, webhook_id: str) -> None:
        super().__init__(f"Webhook with id '{webhook_id}' doesn't exist")


class DestinationNotFound(NotFound):
    code = "NotFound_Destination"

    def __init__(self, destination_id: str) -> None:
        super().__init__(f"Destination with id '{destination_id}' doesn't exist")


class MethodNotAllowed(SluiceError):
    status = HTTPStatus.METHOD_NOT_ALLOWED
    code = "MethodNotAllowed"


class Conflict(SluiceError):
    status = HTTPStatus.CONFLICT
    code = "Conflict"


class SchemaTaken(Conflict):
    def __init__(self, schema: str) -> None:
        super().__init__(f"A connection with schema '{schema}' already exists in this group")


class ConcurrentUpdate(Conflict):
    def __init__(self) -> None:
        super().__init__("The resource was changed by another request; retry")


class UnsupportedMediaType(SluiceError):
    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    code = "UnsupportedMediaType"


class TooManyRequests(SluiceError):
    status = HTTPStatus.TOO_MANY_REQUESTS
    code = "TooManyRequests"


class PayloadTooLarge(SluiceError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    code = "PayloadTooLarge"
