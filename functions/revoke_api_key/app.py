"""DELETE /v1/api-keys/{api_key}: revoke one of the caller's account's API keys (a Sluice extension:
Fivetran's API has no such route)."""

from __future__ import annotations

from typing import Any

from sluice.accounts.api_keys import revoke_api_key
from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.errors import NotFound
from sluice.observability import api_handler
from sluice.storage.store import get_store

app = make_resolver()


@app.delete("/v1/api-keys/<api_key>")
def revoke(api_key: str) -> dict[str, Any]:
    # Another account's key and no key at all answer alike: a caller learns nothing about other keys.
    if not revoke_api_key(get_store(), api_key, account_id=current_caller(app).account_id):
        raise NotFound(f"API key '{api_key}' doesn't exist")
    return envelope(
        message=(
            f"API key '{api_key}' has been revoked; "
            "requests with it are refused once the authorizer's cached decision expires (5 minutes)"
        )
    )


lambda_handler = api_handler(app)
