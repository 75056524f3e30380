"""Users and the account, as the API key's caller sees them. Sluice keeps no user directory: an API
key's user is the one user a caller can see (Fivetran's shapes, with what Sluice does not know null)."""

from __future__ import annotations

from typing import Any

from sluice.api.caller import Caller
from sluice.errors import NotFound


class UserNotFound(NotFound):
    code = "NotFound_User"

    def __init__(self, user_id: str) -> None:
        super().__init__(f"User with id '{user_id}' doesn't exist")


def user_out(caller: Caller) -> dict[str, Any]:
    return {
        "id": caller.user_id,
        "email": None,
        "given_name": None,
        "family_name": None,
        "verified": True,
        "invited": False,
        "picture": None,
        "phone": None,
        "role": "Account Administrator",
        "active": True,
        "created_at": None,
        "logged_in_at": None,
    }


def list_users(caller: Caller) -> dict[str, Any]:
    return {"items": [user_out(caller)], "next_cursor": None}


def get_user(caller: Caller, user_id: str) -> dict[str, Any]:
    if user_id != caller.user_id:
        raise UserNotFound(user_id)
    return user_out(caller)


def account_info(caller: Caller) -> dict[str, Any]:
    return {
        "account_id": caller.account_id,
        "account_name": None,
        "user_id": caller.user_id,
        "system_key_id": None,
    }
