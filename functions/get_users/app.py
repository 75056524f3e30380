"""GET /v1/users and GET /v1/users/{user_id}: the API key's user (the Airflow hook's test_connection
lists users)."""

from __future__ import annotations

from typing import Any

from sluice.accounts import users
from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.observability import api_handler

app = make_resolver()


@app.get("/v1/users")
def list_users() -> dict[str, Any]:
    return envelope(users.list_users(current_caller(app)), "Users list retrieved successfully")


@app.get("/v1/users/<user_id>")
def get_user(user_id: str) -> dict[str, Any]:
    return envelope(users.get_user(current_caller(app), user_id), "User retrieved successfully")


lambda_handler = api_handler(app)
