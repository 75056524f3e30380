"""Secret config fields: masked on the way out, encrypted with KMS at rest, kept when "******" returns."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from functools import cache
from typing import Any

from sluice.errors import InvalidInput
from sluice.sources.base import EACH, SecretPath

MASK = "******"
AUTH_POINTER = "$auth"  # the write-only top-level `auth` object


def _walk(
    node: Any, path: SecretPath, pointer: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], Any, str]]:
    """Yield (parent pointer, parent container, key) for every place `path` reaches in `node`."""
    if not path:
        return
    head, rest = path[0], path[1:]
    if head == EACH:
        if isinstance(node, list):
            for index, item in enumerate(node):
                yield from _walk(item, rest, (*pointer, str(index)))
        return
    if not isinstance(node, dict) or head not in node:
        return
    if rest:
        yield from _walk(node[head], rest, (*pointer, head))
    else:
        yield pointer, node, head


def split_secrets(
    config: dict[str, Any], paths: frozenset[SecretPath]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Return the config with secrets masked, and the secret values by JSON pointer.

    A value that is already the mask is left out of the secrets: it means "keep what is stored".
    """
    masked = copy.deepcopy(config)
    found: dict[str, str] = {}
    for path in paths:
        for pointer, parent, key in list(_walk(masked, path, ())):
            value = parent[key]
            if value is None:
                continue
            if value != MASK:
                found["/".join((*pointer, key))] = value
            parent[key] = MASK
    return masked, found


def masked_pointers(config: dict[str, Any], paths: frozenset[SecretPath]) -> set[str]:
    """Pointers of every secret field present in a masked config."""
    return {
        "/".join((*pointer, key))
        for path in paths
        for pointer, parent, key in _walk(config, path, ())
        if parent[key] == MASK
    }


def reveal(config: dict[str, Any], plain: dict[str, str]) -> dict[str, Any]:
    """Put decrypted secret values back into a masked config (for sync workers and setup tests)."""
    full = copy.deepcopy(config)
    for pointer, value in plain.items():
        if pointer == AUTH_POINTER:
            continue
        *parents, key = pointer.split("/")
        node: Any = full
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[key] = value
    return full


def merge_config(stored: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Fivetran's PATCH rule for config: an absent key keeps its value, null clears it, and a present
    key replaces it whole (so `auth` can switch type; secrets inside may come back as "******")."""
    merged = copy.deepcopy(stored)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


class SecretBox:
    """Encrypts and decrypts secret values with KMS, each bound to its owner and field.

    The owner is a connection (`scope="connection_id"`, the default) or a group's destination
    (`scope="destination_id"`, the group id): a ciphertext copied to another owner, another kind of
    owner or another field does not decrypt."""

    def __init__(self, kms: Any, key_id: str) -> None:
        self._kms = kms
        self._key_id = key_id

    def encrypt(
        self, connection_id: str, values: dict[str, str], scope: str = "connection_id"
    ) -> dict[str, str]:
        return {
            pointer: base64.b64encode(
                self._kms.encrypt(
                    KeyId=self._key_id,
                    Plaintext=value.encode(),
                    EncryptionContext={scope: connection_id, "field": pointer},
                )["CiphertextBlob"]
            ).decode()
            for pointer, value in values.items()
        }

    def decrypt(
        self, connection_id: str, ciphertexts: dict[str, str], scope: str = "connection_id"
    ) -> dict[str, str]:
        return {
            pointer: self._kms.decrypt(
                CiphertextBlob=base64.b64decode(blob),
                EncryptionContext={scope: connection_id, "field": pointer},
            )["Plaintext"].decode()
            for pointer, blob in ciphertexts.items()
        }


def seal_config(
    connection_id: str,
    config: dict[str, Any],
    paths: frozenset[SecretPath],
    stored: dict[str, str],
    box: SecretBox,
    auth: dict[str, Any] | None = None,
    scope: str = "connection_id",
) -> tuple[dict[str, Any], dict[str, str]]:
    """Mask a validated config and produce the ciphertexts to store with it.

    Secrets sent as "******" keep their stored ciphertext; secrets no longer present are dropped.
    """
    masked, new_values = split_secrets(config, paths)
    kept: dict[str, str] = {}
    for pointer in masked_pointers(masked, paths) - new_values.keys():
        if pointer not in stored:
            raise InvalidInput(f"Field 'config.{pointer.replace('/', '.')}' is required")
        kept[pointer] = stored[pointer]
    if auth is not None:
        new_values[AUTH_POINTER] = json.dumps(auth)
    elif AUTH_POINTER in stored:
        kept[AUTH_POINTER] = stored[AUTH_POINTER]
    return masked, {**kept, **box.encrypt(connection_id, new_values, scope)}


@cache
def secret_box() -> SecretBox:
    from sluice.aws import client
    from sluice.settings import get_settings

    return SecretBox(client("kms"), get_settings().kms_key_id)
