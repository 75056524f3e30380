"""Trust that lasts: the TLS certificates and SSH host keys a connection approved, and the network
path its setup tests and syncs run on.

Approved by a user (`POST /v1/connections/{id}/certificates`, `.../fingerprints`) or by setup tests
run with `trust_certificates` / `trust_fingerprints` (what the tests saw). Syncs accept a certificate
that does not verify by the system trust store only when it is exactly one of these.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sluice.api.caller import Caller
from sluice.certificates import (
    certificate_hash,
    decoded,
    describe,
    encoded,
    fingerprint_of,
    hash_id,
    host_key_hash,
)
from sluice.connections.model import ApprovedCertificate, ApprovedFingerprint, Connection
from sluice.errors import InvalidInput, NotFound
from sluice.network_path import NetworkPath, SshTunnel
from sluice.storage.store import Store
from sluice.timestamps import format_timestamp, utc_now

# Approvals kept per connection (each is a few KB on the connection's item).
MAX_APPROVED = 50


class CertificateNotFound(NotFound):
    code = "NotFound_Certificate"

    def __init__(self, hash_: str) -> None:
        super().__init__(f"Certificate with hash '{hash_}' doesn't exist")


class FingerprintNotFound(NotFound):
    code = "NotFound_Fingerprint"

    def __init__(self, hash_: str) -> None:
        super().__init__(f"Fingerprint with hash '{hash_}' doesn't exist")


# ---- the network path ------------------------------------------------------------------------------


def network_path_for(
    connection: Connection,
    store: Store,
    *,
    trust_any_certificate: bool = False,
    trust_any_host_key: bool = False,
) -> NetworkPath:
    """The path the connection's source runs on: its approved certificates pinned, and through its
    proxy agent (ProxyAgent) or its bastion (SshTunnel, approved host keys only)."""
    from sluice.proxy_agents import proxy_for

    approved = frozenset(fingerprint_of(_der(c)) for c in connection.certificates)
    proxy = None
    if connection.networking_method == "ProxyAgent" and connection.proxy_agent_id:
        proxy = proxy_for(store, connection.account_id, connection.proxy_agent_id)
    tunnel = None
    if connection.networking_method == "SshTunnel":
        tunnel = _tunnel_for(connection, store, trust_any_host_key)
    return NetworkPath(
        connection_id=connection.id,
        approved_certificates=approved,
        trust_any_certificate=trust_any_certificate,
        proxy=proxy,
        tunnel=tunnel,
        private_link=connection.networking_method == "PrivateLink",
    )


def tunnel_problem(connection: Connection) -> str | None:
    """Why an SshTunnel connection's config can't name its bastion (None when it can)."""
    missing = [f for f in ("tunnel_host", "tunnel_user") if not connection.config.get(f)]
    if missing:
        return f"Field 'config.{missing[0]}' is required when networking_method is SshTunnel"
    return None


def _tunnel_for(connection: Connection, store: Store, trust_any_host_key: bool) -> SshTunnel:
    from sluice.groups.ssh_keys import private_key

    problem = tunnel_problem(connection)
    if problem:
        raise InvalidInput(problem)
    config = connection.config
    return SshTunnel(
        host=str(config["tunnel_host"]),
        port=int(config.get("tunnel_port") or 22),
        user=str(config["tunnel_user"]),
        private_key=private_key(store, connection.account_id, connection.group_id),
        group_id=connection.group_id,
        approved_host_keys=frozenset(_fingerprint_hash_of(f) for f in connection.fingerprints),
        trust_any_host_key=trust_any_host_key,
    )


def with_seen_approved(connection: Connection, path: NetworkPath, user_id: str) -> Connection:
    """The connection with every certificate (host key) its setup tests accepted on trust_certificates
    (trust_fingerprints) approved."""
    known = {c.encoded_cert for c in connection.certificates}
    now = format_timestamp(utc_now())
    added = [
        ApprovedCertificate(encoded_cert=encoded(der), validated_by=user_id, validated_date=now)
        for der in path.seen_certificates
        if encoded(der) not in known
    ]
    known_keys = {f.public_key for f in connection.fingerprints}
    seen_keys = path.tunnel.seen_host_keys if path.tunnel is not None else []
    keys = [
        ApprovedFingerprint(public_key=line, validated_by=user_id, validated_date=now)
        for line in seen_keys
        if line not in known_keys
    ]
    if not added and not keys:
        return connection
    return connection.model_copy(
        update={
            "certificates": [*connection.certificates, *added][-MAX_APPROVED:],
            "fingerprints": [*connection.fingerprints, *keys][-MAX_APPROVED:],
        }
    )


# ---- certificates ----------------------------------------------------------------------------------


def certificate_out(approved: ApprovedCertificate) -> dict[str, Any]:
    der = _der(approved)
    hash_ = certificate_hash(der)
    return {
        "id": hash_id(hash_),
        "hash": hash_,
        **describe(der),
        "validated_by": approved.validated_by,
        "validated_date": approved.validated_date,
    }


def _der(approved: ApprovedCertificate) -> bytes:
    return base64.b64decode(approved.encoded_cert)


def _certificate_matches(approved: ApprovedCertificate, hash_: str) -> bool:
    der = _der(approved)
    wanted = hash_.strip()
    return wanted in (certificate_hash(der), hash_id(certificate_hash(der))) or _hex(wanted) == _hex(
        fingerprint_of(der)
    )


def _hex(value: str) -> str:
    return value.replace(":", "").lower()


@dataclass(frozen=True)
class TrustPage:
    items: list[dict[str, Any]]
    next_cursor: str | None


def list_certificates(
    caller: Caller, connection_id: str, cursor: str | None, limit: int, store: Store
) -> TrustPage:
    connection = store.get_connection(caller.account_id, connection_id)
    return _page([certificate_out(c) for c in connection.certificates], cursor, limit)


def get_certificate(caller: Caller, connection_id: str, hash_: str, store: Store) -> dict[str, Any]:
    connection = store.get_connection(caller.account_id, connection_id)
    for approved in connection.certificates:
        if _certificate_matches(approved, hash_):
            return certificate_out(approved)
    raise CertificateNotFound(hash_)


def approve_certificate(
    caller: Caller, connection_id: str, hash_: str, encoded_cert: str, store: Store
) -> dict[str, Any]:
    der = decoded(encoded_cert)
    if der is None:
        raise InvalidInput("Field 'encoded_cert' must be the certificate in base64 (DER) or PEM")
    try:
        describe(der)
    except ValueError:
        raise InvalidInput("Field 'encoded_cert' is not an X.509 certificate") from None
    approved = ApprovedCertificate(
        encoded_cert=encoded(der), validated_by=caller.user_id, validated_date=format_timestamp(utc_now())
    )
    if not _certificate_matches(approved, hash_):
        raise InvalidInput(
            f"Field 'hash' does not match encoded_cert: the certificate's hash is {certificate_hash(der)}"
        )

    def add(current: Connection) -> Connection | None:
        if any(c.encoded_cert == approved.encoded_cert for c in current.certificates):
            return None  # approved already: nothing to write
        if len(current.certificates) >= MAX_APPROVED:
            raise InvalidInput(f"A connection keeps at most {MAX_APPROVED} certificates: revoke one first")
        return current.model_copy(update={"certificates": [*current.certificates, approved]})

    current, written = store.modify_connection(caller.account_id, connection_id, add)
    kept = (written or current).certificates
    return certificate_out(next(c for c in kept if c.encoded_cert == approved.encoded_cert))


def revoke_certificate(caller: Caller, connection_id: str, hash_: str, store: Store) -> None:
    _revoke(
        caller,
        connection_id,
        store,
        lambda c: c.model_copy(
            update={"certificates": [a for a in c.certificates if not _certificate_matches(a, hash_)]}
        ),
        lambda c: len(c.certificates),
        CertificateNotFound(hash_),
    )


def _revoke(
    caller: Caller,
    connection_id: str,
    store: Store,
    without: Callable[[Connection], Connection],
    count: Callable[[Connection], int],
    missing: NotFound,
) -> None:
    def remove(current: Connection) -> Connection | None:
        changed = without(current)
        if count(changed) == count(current):
            raise missing
        return changed

    store.modify_connection(caller.account_id, connection_id, remove)


# ---- fingerprints (SSH host keys) ----------------------------------------------------------------


def key_blob(public_key: str) -> bytes | None:
    """The key blob of an OpenSSH public key line (`ssh-ed25519 AAAA... comment`), None if it is not one."""
    parts = public_key.split()
    if len(parts) < 2:
        return None
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        return None
    # The blob starts with its own key type (a length-prefixed string): it must agree with the line's.
    if len(blob) < 4 or blob[4 : 4 + int.from_bytes(blob[:4], "big")] != parts[0].encode():
        return None
    return blob


def fingerprint_hash(blob: bytes) -> str:
    return host_key_hash(blob)


def _same_hash(given: str, hash_: str) -> bool:
    normal = given.strip().removeprefix("SHA256:").rstrip("=").replace("+", "-").replace("/", "_")
    return normal == hash_ or given.strip() == hash_id(hash_)


def _fingerprint_hash_of(approved: ApprovedFingerprint) -> str:
    blob = key_blob(approved.public_key)
    return fingerprint_hash(blob or b"")


def fingerprint_out(approved: ApprovedFingerprint) -> dict[str, Any]:
    hash_ = _fingerprint_hash_of(approved)
    return {
        "id": hash_id(hash_),
        "hash": hash_,
        "public_key": approved.public_key,
        "validated_by": approved.validated_by,
        "validated_date": approved.validated_date,
    }


def list_fingerprints(
    caller: Caller, connection_id: str, cursor: str | None, limit: int, store: Store
) -> TrustPage:
    connection = store.get_connection(caller.account_id, connection_id)
    return _page([fingerprint_out(f) for f in connection.fingerprints], cursor, limit)


def get_fingerprint(caller: Caller, connection_id: str, hash_: str, store: Store) -> dict[str, Any]:
    connection = store.get_connection(caller.account_id, connection_id)
    for approved in connection.fingerprints:
        if _same_hash(hash_, _fingerprint_hash_of(approved)):
            return fingerprint_out(approved)
    raise FingerprintNotFound(hash_)


def approve_fingerprint(
    caller: Caller, connection_id: str, hash_: str, public_key: str, store: Store
) -> dict[str, Any]:
    blob = key_blob(public_key)
    if blob is None:
        raise InvalidInput("Field 'public_key' must be an SSH public key ('<type> <base64>')")
    line = f"{public_key.split()[0]} {base64.b64encode(blob).decode()}"
    if not _same_hash(hash_, fingerprint_hash(blob)):
        raise InvalidInput(
            f"Field 'hash' does not match public_key: the key's hash is {fingerprint_hash(blob)}"
        )
    approved = ApprovedFingerprint(
        public_key=line, validated_by=caller.user_id, validated_date=format_timestamp(utc_now())
    )
    return fingerprint_out(_add_fingerprint(store, caller.account_id, connection_id, approved))


def _add_fingerprint(
    store: Store, account_id: str | None, connection_id: str, approved: ApprovedFingerprint
) -> ApprovedFingerprint:
    def add(current: Connection) -> Connection | None:
        if any(f.public_key == approved.public_key for f in current.fingerprints):
            return None
        if len(current.fingerprints) >= MAX_APPROVED:
            raise InvalidInput(f"A connection keeps at most {MAX_APPROVED} fingerprints: revoke one first")
        return current.model_copy(update={"fingerprints": [*current.fingerprints, approved]})

    current, written = store.modify_connection(account_id, connection_id, add)
    return next(f for f in (written or current).fingerprints if f.public_key == approved.public_key)


def revoke_fingerprint(caller: Caller, connection_id: str, hash_: str, store: Store) -> None:
    _revoke(
        caller,
        connection_id,
        store,
        lambda c: c.model_copy(
            update={
                "fingerprints": [f for f in c.fingerprints if not _same_hash(hash_, _fingerprint_hash_of(f))]
            }
        ),
        lambda c: len(c.fingerprints),
        FingerprintNotFound(hash_),
    )


# ---- paging ----------------------------------------------------------------------------------------


def _page(items: list[dict[str, Any]], cursor: str | None, limit: int) -> TrustPage:
    """A page of a connection's approvals (they live on its one item: every page is one read)."""
    start = 0
    if cursor:
        try:
            start = int(json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["o"])
        except (binascii.Error, ValueError, KeyError, TypeError):
            raise InvalidInput("Invalid cursor") from None
        if start < 0:
            raise InvalidInput("Invalid cursor")
    end = start + limit
    following = None
    if end < len(items):
        following = base64.urlsafe_b64encode(json.dumps({"o": end}).encode()).decode().rstrip("=")
    return TrustPage(items[start:end], following)
