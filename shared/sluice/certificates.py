"""TLS certificates as the certificates API names them: hash, fingerprints, and the details shown.

`hash` (the `{hash}` of `/certificates/{hash}`) is the SHA-256 of the certificate's DER in base64url
without padding, so that it is safe in a URL path; `id` is that hash in base64url, as Fivetran
describes its ids ("Base64URL encoded hash"). `encoded_cert` is the DER in standard base64.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any


def fingerprint_of(der: bytes) -> str:
    """SHA-256 of a certificate (DER), upper-case hex pairs joined by ':' (as browsers show it)."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def certificate_hash(der: bytes) -> str:
    return _b64url(hashlib.sha256(der).digest())


def hash_id(hash_: str) -> str:
    return _b64url(hash_.encode())


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def encoded(der: bytes) -> str:
    return base64.b64encode(der).decode()


def decoded(encoded_cert: str) -> bytes | None:
    """The DER of an `encoded_cert` (base64 DER, or a PEM block); None when it is neither."""
    text = encoded_cert.strip()
    if text.startswith("-----BEGIN"):
        lines = [line for line in text.splitlines() if line and not line.startswith("-----")]
        text = "".join(lines)
    try:
        der = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    return der or None


def certificate_details(der: bytes | None) -> dict[str, Any]:
    """What a setup test shows of a certificate it met: enough to approve it (`hash`, `encoded_cert`)."""
    if not der:
        return {}
    return {
        "certificate_sha256": fingerprint_of(der),
        "hash": certificate_hash(der),
        "encoded_cert": encoded(der),
    }


def describe(der: bytes) -> dict[str, str]:
    """`name`, `type`, `sha1`, `sha256`, `public_key` of a certificate for the certificates API.
    Raises ValueError when the DER is not an X.509 certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_der_x509_certificate(der)
    common_names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    name = str(common_names[0].value) if common_names else cert.subject.rfc4514_string()
    public_key = cert.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "name": name,
        "type": "TLS",
        "sha1": hashlib.sha1(der).hexdigest(),
        "sha256": hashlib.sha256(der).hexdigest(),
        "public_key": public_key.decode().strip(),
    }


def host_key_hash(blob: bytes) -> str:
    """An SSH host key's `hash` in the fingerprints API: SHA-256 of its blob, base64url without padding
    (OpenSSH shows the same digest in standard base64 as `SHA256:...`)."""
    return _b64url(hashlib.sha256(blob).digest())
