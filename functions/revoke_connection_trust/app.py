"""DELETE /v1/connections/{id}/certificates/{hash} and .../fingerprints/{hash}: revoke an approval; the
next sync refuses that certificate or host key again."""

from __future__ import annotations

from typing import Any

from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.connections import trust
from sluice.observability import api_handler
from sluice.storage.store import get_store

app = make_resolver()


@app.delete("/v1/connections/<connection_id>/certificates/<hash>")
def revoke_certificate(connection_id: str, hash: str) -> dict[str, Any]:
    trust.revoke_certificate(current_caller(app), connection_id, hash, get_store())
    return envelope(message=f"Certificate with hash '{hash}' has been revoked")


@app.delete("/v1/connections/<connection_id>/fingerprints/<hash>")
def revoke_fingerprint(connection_id: str, hash: str) -> dict[str, Any]:
    trust.revoke_fingerprint(current_caller(app), connection_id, hash, get_store())
    return envelope(message=f"Fingerprint with hash '{hash}' has been revoked")


lambda_handler = api_handler(app)
