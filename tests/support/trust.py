"""Material to approve: SSH public keys in OpenSSH form, with the hash the fingerprints API names them by."""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519


def ssh_public_key() -> tuple[str, str]:
    """A fresh ed25519 public key line, and its hash (SHA-256 of the key blob, base64url unpadded)."""
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    line = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return line, ssh_key_hash(line)


def ssh_key_hash(line: str) -> str:
    blob = base64.b64decode(line.split()[1])
    return base64.urlsafe_b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
