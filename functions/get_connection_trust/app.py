"""GET /v1/connections/{id}/certificates[/{hash}] and .../fingerprints[/{hash}]: what the connection
approved (the TLS certificates and SSH host keys its source may present)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Query

from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.connections import trust
from sluice.observability import api_handler
from sluice.storage.store import get_store

app = make_resolver()


@app.get("/v1/connections/<connection_id>/certificates")
def list_certificates(
    connection_id: str,
    cursor: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    page = trust.list_certificates(current_caller(app), connection_id, cursor, limit, get_store())
    return envelope(asdict(page), "Certificates list retrieved successfully")


@app.get("/v1/connections/<connection_id>/certificates/<hash>")
def get_certificate(connection_id: str, hash: str) -> dict[str, Any]:
    certificate = trust.get_certificate(current_caller(app), connection_id, hash, get_store())
    return envelope(certificate, "Certificate retrieved successfully")


@app.get("/v1/connections/<connection_id>/fingerprints")
def list_fingerprints(
    connection_id: str,
    cursor: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    page = trust.list_fingerprints(current_caller(app), connection_id, cursor, limit, get_store())
    return envelope(asdict(page), "Fingerprints list retrieved successfully")


@app.get("/v1/connections/<connection_id>/fingerprints/<hash>")
def get_fingerprint(connection_id: str, hash: str) -> dict[str, Any]:
    fingerprint = trust.get_fingerprint(current_caller(app), connection_id, hash, get_store())
    return envelope(fingerprint, "Fingerprint retrieved successfully")


lambda_handler = api_handler(app)
