"""Connector type metadata (GET /v1/metadata/connector-types[/{service}]): what each source service is and
the JSON schema of its config, straight from the service's config model."""

from __future__ import annotations

import base64
import binascii
from http import HTTPStatus
from typing import Any

from sluice.errors import InvalidInput, NotFound
from sluice.sources import SERVICES
from sluice.sources.base import Service

# Fivetran's connector categories; a service not listed here is "Other".
_TYPES = {"rest_api": "API", "s3": "File"}


class ConnectorTypeNotFound(NotFound):
    status = HTTPStatus.NOT_FOUND
    code = "NotFound_ConnectorType"

    def __init__(self, service: str) -> None:
        super().__init__(f"Connector type with id '{service}' doesn't exist")


def _summary(service: Service) -> dict[str, Any]:
    return {
        "id": service.name,
        "name": service.title,
        "type": _TYPES.get(service.name, "Other"),
        "description": service.description,
        "icon_url": None,
        "link_to_docs": None,
    }


def _encode_cursor(service_id: str) -> str:
    return base64.urlsafe_b64encode(service_id.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        service_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidInput("Invalid cursor") from None
    if service_id not in SERVICES:
        raise InvalidInput("Invalid cursor")
    return service_id


def connector_types(cursor: str | None, limit: int) -> dict[str, Any]:
    """One page of connector types, ordered by id."""
    ids = sorted(SERVICES)
    start = ids.index(_decode_cursor(cursor)) + 1 if cursor else 0
    page = ids[start : start + limit]
    more = start + limit < len(ids)
    return {
        "items": [_summary(SERVICES[i]) for i in page],
        "next_cursor": _encode_cursor(page[-1]) if more and page else None,
    }


def connector_type(service_id: str) -> dict[str, Any]:
    service = SERVICES.get(service_id)
    if service is None:
        raise ConnectorTypeNotFound(service_id)
    return {**_summary(service), "config": service.config_model.model_json_schema(by_alias=True)}
