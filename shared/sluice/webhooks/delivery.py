"""Sending one payload to one webhook: JSON, signed, through the outbound guard, bounded in time.

The signature is `X-Fivetran-Signature-256`: the HMAC-SHA256 of the exact body with the webhook's
secret, in upper-case hex (as Fivetran sends it); compare it case-insensitively. A webhook without a
secret gets no signature header.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0
TOTAL_TIMEOUT = 15.0
MAX_REPLY_BYTES = 64 * 1024
SIGNATURE_HEADER = "X-Fivetran-Signature-256"


@dataclass(frozen=True)
class Delivery:
    succeed: bool
    status: int  # the receiver's HTTP status; 0 when none came back
    message: str


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def signature(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().upper()


def deliver(url: str, payload: dict[str, Any], secret: str | None) -> Delivery:
    """POST the payload to `url`: a 2xx is success; anything else (a refused address, a timeout, a
    redirect, another status) is a failure with a message that says which, never a secret."""
    from sluice.outbound import GuardedSession, OutboundError

    body = body_of(payload)
    headers = {"Content-Type": "application/json", "User-Agent": "Sluice-Webhooks/1"}
    if secret:
        headers[SIGNATURE_HEADER] = signature(body, secret)
    session = GuardedSession(
        timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
        total_timeout=TOTAL_TIMEOUT,
        max_bytes=MAX_REPLY_BYTES,
        max_redirects=0,
    )
    try:
        with session:
            reply = session.request("POST", url, headers=headers, data=body)
    except OutboundError as exc:
        return Delivery(False, 0, str(exc))
    if 200 <= reply.status < 300:
        return Delivery(True, reply.status, "Webhook delivered")
    return Delivery(False, reply.status, f"The webhook answered HTTP {reply.status}")
