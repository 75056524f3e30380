"""Identifiers: short, lowercase, URL-safe and unguessable."""

from __future__ import annotations

import base64
import secrets


def new_id() -> str:
    # 80 random bits in base32: 16 characters, no padding, safe in paths and schema names.
    return base64.b32encode(secrets.token_bytes(10)).decode().lower()
