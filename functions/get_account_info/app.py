"""GET /v1/account/info: the API key's account and user."""

from __future__ import annotations

from typing import Any

from sluice.accounts import users
from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.observability import api_handler

app = make_resolver()


@app.get("/v1/account/info")
def get_account_info() -> dict[str, Any]:
    return envelope(users.account_info(current_caller(app)), "Account info retrieved successfully")


lambda_handler = api_handler(app)
