"""One SSH key pair per group, for SSH tunnels to its connections' sources (`networking_method:
SshTunnel`). Made on first use; the private key is stored encrypted with the secrets key (bound to the
group) and never leaves the data plane; the public key is what `GET /v1/groups/{id}/public-key` shows,
for the user to add to the bastion's `authorized_keys`."""

from __future__ import annotations

from typing import Any

from sluice.api.caller import Caller
from sluice.errors import GroupNotFound
from sluice.storage.store import Store

_SCOPE = "group_id"  # the KMS encryption context the private key is bound to
_FIELD = "private_key"


def public_key(caller: Caller, group_id: str, store: Store) -> str:
    if store.get_group(caller.account_id, group_id) is None:
        raise GroupNotFound(group_id)
    return str(_key_item(store, caller.account_id, group_id)["public_key"])


def private_key(store: Store, account_id: str, group_id: str) -> str:
    """The group's private key (OpenSSH PEM), decrypted (data-plane functions only)."""
    from sluice.config_secrets import secret_box

    item = _key_item(store, account_id, group_id)
    return secret_box().decrypt(group_id, dict(item["secrets"]), scope=_SCOPE)[_FIELD]


def _key_item(store: Store, account_id: str, group_id: str) -> dict[str, Any]:
    found = store.get_group_ssh_key(group_id)
    if found is not None:
        return found
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from sluice.config_secrets import secret_box

    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    line = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    item: dict[str, Any] = {
        "type": "group_ssh_key",
        "account_id": account_id,
        "group_id": group_id,
        "public_key": f"{line.decode()} sluice-group-{group_id}",
        "secrets": secret_box().encrypt(group_id, {_FIELD: pem}, scope=_SCOPE),
    }
    # Two first uses at once: one key wins, and both callers answer with it.
    return store.put_group_ssh_key(group_id, item)
