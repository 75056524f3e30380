"""Secret config fields: masked on the way out, encrypted with KMS at rest, kept when "******" returns.

`Scrubber` is the one place that takes a connection's secrets out of what leaves Sluice: setup-test
results, sync messages and run records, discovered column names, log lines.

A stored secret is kept only while it goes where it went: when a field marked `SecretDestination`
(rest_api's `base_url`) changes, every secret must be given again (see `seal_config`).
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterable, Iterator
from functools import cache
from typing import Any

from sluice.errors import InvalidInput
from sluice.sources.base import EACH, SecretDestination, SecretPath

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


def _places(
    config: dict[str, Any], destinations: tuple[tuple[SecretPath, SecretDestination], ...]
) -> dict[str, Any]:
    """Where a config sends its secrets: each marked field's place, by pointer."""
    return {
        "/".join((*pointer, key)): marker.place(parent[key])
        for path, marker in destinations
        for pointer, parent, key in _walk(config, path, ())
    }


def moved_destination(
    previous: dict[str, Any],
    config: dict[str, Any],
    destinations: tuple[tuple[SecretPath, SecretDestination], ...],
) -> str | None:
    """The first field (a pointer) that sends the secrets somewhere else than before, if any."""
    before, after = _places(previous, destinations), _places(config, destinations)
    return next((p for p in sorted(before.keys() | after.keys()) if before.get(p) != after.get(p)), None)


def _field(pointer: str) -> str:
    return "config." + pointer.replace("/", ".")


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


# Secrets shorter than this are not scrubbed: replacing every "id" in the output would mangle it
# (and name columns wrongly) more than it would protect a two-letter password.
MIN_SCRUBBED_LENGTH = 4


class Scrubber:
    """Replaces every known form of a connection's secrets with the mask, wherever text leaves."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so that a secret containing another is replaced whole.
        self._secrets = sorted({s for s in secrets if len(s) >= MIN_SCRUBBED_LENGTH}, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def touches(self, text: str) -> bool:
        return any(secret in text for secret in self._secrets)

    def text(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def value(self, value: Any) -> Any:
        """A JSON-like value with every string scrubbed, dict keys included."""
        if not self._secrets:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value

    def row_keys(self, rows: list[dict[str, Any]], keys: set[str]) -> list[dict[str, Any]]:
        """Rows whose keys (column names; `keys` is their union) hold no secret; values stay as they are."""
        renamed = {k: self.text(k) for k in keys if self.touches(k)}
        if not renamed:
            return rows
        return [{renamed.get(k, k): v for k, v in row.items()} for row in rows]


def scrubber_for(
    plain_config: dict[str, Any], paths: frozenset[SecretPath], forms: Iterable[str] = ()
) -> Scrubber:
    """The scrubber of a config with its secrets revealed: each secret value, plus the other `forms`
    they take on the wire (a service knows those: an encoded Basic credential)."""
    _, values = split_secrets(plain_config, paths)
    return Scrubber([*(v for v in values.values() if isinstance(v, str)), *forms])


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
    *,
    previous: dict[str, Any] | None = None,
    destinations: tuple[tuple[SecretPath, SecretDestination], ...] = (),
) -> tuple[dict[str, Any], dict[str, str]]:
    """Mask a validated config and produce the ciphertexts to store with it.

    Secrets sent as "******" keep their stored ciphertext; secrets no longer present are dropped.
    With `previous` (the stored config of an update), keeping a secret while a field in
    `destinations` changes its place is refused: the secrets must come again with the move.
    """
    masked, new_values = split_secrets(config, paths)
    kept: dict[str, str] = {}
    for pointer in sorted(masked_pointers(masked, paths) - new_values.keys()):
        if pointer not in stored:
            raise InvalidInput(f"Field '{_field(pointer)}' is required")
        kept[pointer] = stored[pointer]
    moved = moved_destination(previous, config, destinations) if previous is not None and kept else None
    if moved is not None:
        again = ", ".join(f"'{_field(p)}'" for p in kept)
        raise InvalidInput(
            f"Field '{_field(moved)}' changes where the secrets are sent: give {again} again with it "
            '(a stored secret is never sent to a new place, so "******" can\'t keep it)'
        )
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
