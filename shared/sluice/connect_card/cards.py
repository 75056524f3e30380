"""Connect Card links: HS256 JWTs that let a person set up one connection without an API key, and the
CSRF tokens of the hosted page, both signed with the key kept in Secrets Manager."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sluice.api.caller import Caller
from sluice.api.request_models import Body, ConnectCardConfig
from sluice.connections.model import Connection
from sluice.errors import InvalidInput, SluiceError
from sluice.storage.store import Store
from sluice.timestamps import utc_now

TOKEN_TTL_SECONDS = 24 * 3600
# Clock skew tolerated on `iat` (tokens issued by another Lambda instance a little ahead of ours).
LEEWAY_SECONDS = 60
SETUP_PATH = "/connect-card/setup"
KEY_CACHE_SECONDS = 300
_MAX_TOKEN_CHARS = 4096
_MAX_REDIRECT_CHARS = 2048

# Indirection so that tests can move time without sleeping.


class ConnectCardRequest(Body):
    """Body of POST /v1/connections/{id}/connect-card (empty means {}). Some clients send
    `redirect_uri` and `hide_setup_guide` at the top level instead of inside `connect_card_config`:
    both are read, and a value inside `connect_card_config` wins."""

    connect_card_config: ConnectCardConfig | None = None
    redirect_uri: str | None = None
    hide_setup_guide: bool | None = None

    def effective_config(self) -> ConnectCardConfig | None:
        nested = self.connect_card_config
        if self.redirect_uri is None and self.hide_setup_guide is None:
            return nested
        top = {"redirect_uri": self.redirect_uri, "hide_setup_guide": self.hide_setup_guide}
        given = {k: v for k, v in (nested.model_dump() if nested else {}).items() if v is not None}
        return ConnectCardConfig.model_validate({**top, **given})


class CardTokenError(SluiceError):
    """The link's token is missing, malformed, forged or expired; the message is safe to show."""

    status = HTTPStatus.UNAUTHORIZED
    code = "Unauthorized"


class CardTokenExpired(CardTokenError):
    pass


@dataclass(frozen=True)
class CardClaims:
    connection_id: str
    account_id: str
    user_id: str
    jti: str
    iat: int
    exp: int
    redirect_uri: str | None = None
    hide_setup_guide: bool = False
    # The hosted page shows the optional fields too (connect_card_config.all_fields); page.py reads it.
    all_fields: bool = False

    def as_payload(self) -> dict[str, Any]:
        return {
            "sub": self.connection_id,
            "connection_id": self.connection_id,
            "account_id": self.account_id,
            "user_id": self.user_id,
            "jti": self.jti,
            "iat": self.iat,
            "exp": self.exp,
            "redirect_uri": self.redirect_uri,
            "hide_setup_guide": self.hide_setup_guide,
            "all_fields": self.all_fields,
        }


# ---- the signing key -------------------------------------------------------------------------------

_key_lock = threading.Lock()
_key_cache: dict[str, tuple[float, bytes]] = {}


def signing_key() -> bytes:
    """The HS256 key from the ConnectCardSecret ({"signing_key": ...}), cached per process for a while so
    that a rotated secret is picked up without a cold start."""
    from sluice.settings import get_settings

    secret_id = get_settings().connect_card_secret_id
    with _key_lock:
        cached = _key_cache.get(secret_id)
        if cached and cached[0] > time.monotonic():
            return cached[1]
    from sluice.aws import client

    raw = client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]
    key = str(json.loads(raw)["signing_key"]).encode()
    if len(key) < 32:
        raise SluiceError("The Connect Card signing key is too short")
    with _key_lock:
        _key_cache[secret_id] = (time.monotonic() + KEY_CACHE_SECONDS, key)
    return key


def forget_signing_key() -> None:
    """Drop the cached key (tests switch between moto backends)."""
    with _key_lock:
        _key_cache.clear()


# ---- HS256 JWTs ------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    if not text or any(c not in _B64_ALPHABET for c in text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_B64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_HEADER = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())


def _signature(key: bytes, signing_input: str) -> str:
    return _b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())


def issue_token(claims: CardClaims, key: bytes) -> str:
    payload = _b64(json.dumps(claims.as_payload(), separators=(",", ":")).encode())
    signing_input = f"{_HEADER}.{payload}"
    return f"{signing_input}.{_signature(key, signing_input)}"


def new_claims(
    connection: Connection, user_id: str, config: ConnectCardConfig | None, now: float | None = None
) -> CardClaims:
    issued = int(utc_now().timestamp() if now is None else now)
    return CardClaims(
        connection_id=connection.id,
        account_id=connection.account_id,
        user_id=user_id,
        jti=secrets.token_urlsafe(16),
        iat=issued,
        exp=issued + TOKEN_TTL_SECONDS,
        redirect_uri=config.redirect_uri if config else None,
        hide_setup_guide=bool(config and config.hide_setup_guide),
        all_fields=bool(config and config.all_fields),
    )


def verify_token(token: str | None, key: bytes, now: float | None = None) -> CardClaims:
    """The claims of a token this service signed that has not expired; CardTokenError otherwise."""
    if not token:
        raise CardTokenError("The link has no token: open the full link you were given.")
    invalid = CardTokenError("It may have been changed or cut short. Ask for a new link.")
    parts = token.split(".")
    if len(token) > _MAX_TOKEN_CHARS or len(parts) != 3:
        raise invalid
    try:
        header = json.loads(_unb64(parts[0]))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise invalid from None
    # Only HS256: never let the token choose "none" or another algorithm.
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise invalid
    if not hmac.compare_digest(_signature(key, f"{parts[0]}.{parts[1]}"), parts[2]):
        raise invalid
    try:
        payload = json.loads(_unb64(parts[1]))
        claims = CardClaims(
            connection_id=_text(payload, "connection_id"),
            account_id=_text(payload, "account_id"),
            user_id=_text(payload, "user_id"),
            jti=_text(payload, "jti"),
            iat=_int(payload, "iat"),
            exp=_int(payload, "exp"),
            redirect_uri=payload.get("redirect_uri")
            if isinstance(payload.get("redirect_uri"), str)
            else None,
            hide_setup_guide=payload.get("hide_setup_guide") is True,
            all_fields=payload.get("all_fields") is True,
        )
    except (ValueError, binascii.Error, UnicodeDecodeError, TypeError, AttributeError):
        raise invalid from None
    current = utc_now().timestamp() if now is None else now
    if claims.exp <= current:
        raise CardTokenExpired("Setup links are valid for one day. Ask for a new link.")
    if claims.iat > current + LEEWAY_SECONDS:
        raise invalid
    return claims


def _text(payload: Mapping[str, Any], name: str) -> str:
    value = payload[name]
    if not isinstance(value, str) or not value:
        raise ValueError(name)
    return value


def _int(payload: Mapping[str, Any], name: str) -> int:
    value = payload[name]
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(name)
    return value


# ---- CSRF ------------------------------------------------------------------------------------------


def csrf_token(claims: CardClaims, key: bytes) -> str:
    """Bound to this link (its jti): a form from another link, or from nowhere, does not pass."""
    return _b64(hmac.new(key, f"connect-card-csrf:{claims.jti}".encode(), hashlib.sha256).digest())


def csrf_ok(claims: CardClaims, given: str | None, key: bytes) -> bool:
    return bool(given) and hmac.compare_digest(csrf_token(claims, key), str(given))


# ---- links -----------------------------------------------------------------------------------------


def checked_config(config: ConnectCardConfig | None) -> ConnectCardConfig | None:
    """The config with its redirect_uri checked: an absolute http or https URL."""
    if config is None or config.redirect_uri is None:
        return config
    uri = config.redirect_uri
    bad = InvalidInput(
        "Invalid value for field 'connect_card_config.redirect_uri': must be an http or https URL"
    )
    if len(uri) > _MAX_REDIRECT_CHARS or any(ord(c) <= 32 or ord(c) == 127 for c in uri):
        raise bad
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise bad from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise bad
    return config


def with_query(url: str, **params: str) -> str:
    """`url` with these query parameters added (kept before any fragment)."""
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *params.items()]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def request_base_url(event: Mapping[str, Any]) -> str:
    """Where this API is reached: settings.public_base_url if set, else the request's Host (+ the stage on
    an execute-api host; the local stack serves at the root)."""
    from sluice.settings import get_settings

    configured = get_settings().public_base_url
    if configured:
        return configured
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    context = event.get("requestContext") or {}
    host = headers.get("host") or str(context.get("domainName") or "localhost")
    hostname = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    loopback = hostname in ("127.0.0.1", "localhost", "[::1]")
    scheme = headers.get("x-forwarded-proto", "http" if loopback else "https").split(",")[0].strip()
    base = f"{scheme}://{host}"
    stage = context.get("stage")
    if stage and host.endswith(".amazonaws.com"):
        base += f"/{stage}"
    return base


def card_for(
    connection: Connection, user_id: str, config: ConnectCardConfig | None, base_url: str
) -> dict[str, Any]:
    """`connect_card` and `connect_card_config` for a connection, as create and connect-card return them."""
    claims = new_claims(connection, user_id, config)
    token = issue_token(claims, signing_key())
    query = {"redirect_uri": claims.redirect_uri or "", "auth": token}
    uri = f"{base_url.rstrip('/')}{SETUP_PATH}?{urlencode(query)}"
    return {
        "connect_card": {"token": token, "uri": uri},
        "connect_card_config": {
            "redirect_uri": claims.redirect_uri,
            "hide_setup_guide": claims.hide_setup_guide,
            "all_fields": claims.all_fields,
        },
    }


def create_card(
    caller: Caller, connection_id: str, config: ConnectCardConfig | None, store: Store, base_url: str
) -> dict[str, Any]:
    checked = checked_config(config)
    connection = store.get_connection(caller.account_id, connection_id)
    return {"connector_id": connection.id, **card_for(connection, caller.user_id, checked, base_url)}
