"""Who is calling: the account and user behind an API key, as the authorizer established."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Caller:
    account_id: str
    user_id: str
