"""POST /v1/connections/{id}/certificates and .../fingerprints: approve a TLS certificate or an SSH host
key, so that syncs accept the source (or its bastion) presenting exactly it. 201, as Fivetran answers."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from sluice.api.request_models import ApproveCertificateRequest, ApproveFingerprintRequest
from sluice.api.resolver import created, current_caller, make_resolver
from sluice.connections import trust
from sluice.observability import api_handler
from sluice.storage.store import get_store

app = make_resolver()


@app.post("/v1/connections/<connection_id>/certificates")
def approve_certificate(
    connection_id: str, request: Annotated[ApproveCertificateRequest, Body()]
) -> Response[str]:
    approved = trust.approve_certificate(
        current_caller(app), connection_id, request.hash, request.encoded_cert, get_store()
    )
    return created(approved, "Certificate has been approved")


@app.post("/v1/connections/<connection_id>/fingerprints")
def approve_fingerprint(
    connection_id: str, request: Annotated[ApproveFingerprintRequest, Body()]
) -> Response[str]:
    approved = trust.approve_fingerprint(
        current_caller(app), connection_id, request.hash, request.public_key, get_store()
    )
    return created(approved, "Fingerprint has been approved")


lambda_handler = api_handler(app)
