"""API keys: secrets stored only as salted hashes, checked in constant time; each key belongs to an
account and a user."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sluice.api.caller import Caller
from sluice.ids import new_id
from sluice.storage.store import Store
from sluice.timestamps import format_timestamp, utc_now


@dataclass(frozen=True)
class NewApiKey:
    api_key: str
    api_secret: str
    account_id: str
    user_id: str


def _hash(salt: str, secret: str) -> str:
    # Secrets are 256 random bits, so one salted SHA-256 is as strong as a slow hash and keeps the
    # authorizer fast.
    return hashlib.sha256(f"{salt}:{secret}".encode()).hexdigest()


def create_api_key(
    store: Store,
    account_id: str | None = None,
    user_id: str | None = None,
    api_key: str | None = None,
    api_secret: str | None = None,
) -> NewApiKey:
    key = NewApiKey(
        api_key=api_key or secrets.token_urlsafe(12),
        api_secret=api_secret or secrets.token_urlsafe(32),
        account_id=account_id or new_id(),
        user_id=user_id or new_id(),
    )
    salt = secrets.token_hex(16)
    fields = {
        "account_id": key.account_id,
        "user_id": key.user_id,
        "salt": salt,
        "secret_hash": _hash(salt, key.api_secret),
        "created_at": format_timestamp(utc_now()),
    }
    store.create_api_key(key.api_key, fields)
    return key


def revoke_api_key(store: Store, api_key: str, account_id: str | None = None) -> bool:
    """Delete a key so the authorizer refuses it (API Gateway's cached decision for it lasts until its
    TTL, `ReauthorizeEvery` in template.yaml). With `account_id`, only a key of that account is
    revoked. False when there is no such key."""
    if len(api_key) > 128:
        return False
    item = store.get_api_key(api_key)
    if item is None or (account_id is not None and item.get("account_id") != account_id):
        return False
    return store.delete_api_key(api_key, str(item["account_id"]))


def parse_basic(header: str | None) -> tuple[str, str] | None:
    if not header:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    api_key, sep, api_secret = decoded.partition(":")
    if not sep or not api_key or not api_secret:
        return None
    return api_key, api_secret


def authenticate(store: Store, header: str | None) -> Caller | None:
    """The caller behind an `Authorization: Basic` header, or None."""
    credentials = parse_basic(header)
    if credentials is None:
        return None
    api_key, api_secret = credentials
    if len(api_key) > 128 or len(api_secret) > 256:
        return None
    item = store.get_api_key(api_key)
    # Hash even when the key is unknown, so timing does not tell which keys exist.
    salt = item["salt"] if item else "0" * 32
    expected = item["secret_hash"] if item else "0" * 64
    if not hmac.compare_digest(_hash(salt, api_secret), expected) or item is None:
        return None
    return Caller(account_id=item["account_id"], user_id=item["user_id"])
