"""Secret masking, merging and sealing rules (no AWS: a fake key box)."""

from __future__ import annotations

import pytest

from sluice.config_secrets import MASK, masked_pointers, merge_config, reveal, seal_config, split_secrets
from sluice.errors import InvalidInput
from sluice.sources import SERVICES
from sluice.sources.base import EACH

PATHS = frozenset({("auth", "token"), ("tables", EACH, "secret")})


class FakeBox:
    def encrypt(
        self, connection_id: str, values: dict[str, str], scope: str = "connection_id"
    ) -> dict[str, str]:
        return {k: f"enc({connection_id}:{v})" for k, v in values.items()}


def test_secret_fields_are_found_from_the_config_models_marker() -> None:
    assert SERVICES["rest_api"].secret_paths == {("auth", "password"), ("auth", "token"), ("auth", "api_key")}
    assert SERVICES["s3"].secret_paths == frozenset()


def test_split_masks_secrets_also_inside_arrays_of_objects() -> None:
    config = {"auth": {"token": "t"}, "tables": [{"secret": "a"}, {"secret": "b", "x": 1}]}
    masked, found = split_secrets(config, PATHS)
    assert masked == {"auth": {"token": MASK}, "tables": [{"secret": MASK}, {"secret": MASK, "x": 1}]}
    assert found == {"auth/token": "t", "tables/0/secret": "a", "tables/1/secret": "b"}
    assert config["auth"]["token"] == "t", "the input is not modified"
    assert masked_pointers(masked, PATHS) == {"auth/token", "tables/0/secret", "tables/1/secret"}


def test_reveal_puts_the_values_back() -> None:
    masked, found = split_secrets({"auth": {"token": "t"}, "tables": [{"secret": "a"}]}, PATHS)
    assert reveal(masked, found) == {"auth": {"token": "t"}, "tables": [{"secret": "a"}]}


def test_merge_absent_keeps_null_clears_present_replaces() -> None:
    stored = {"a": 1, "b": {"x": 1, "y": 2}, "c": 3}
    assert merge_config(stored, {"b": {"x": 5}, "c": None}) == {"a": 1, "b": {"x": 5}}


def test_a_masked_secret_keeps_its_stored_ciphertext() -> None:
    masked, sealed = seal_config("c1", {"auth": {"token": MASK}}, PATHS, {"auth/token": "old"}, FakeBox())
    assert masked == {"auth": {"token": MASK}}
    assert sealed == {"auth/token": "old"}


def test_a_new_secret_is_encrypted_and_a_removed_one_dropped() -> None:
    stored = {"auth/token": "old", "tables/0/secret": "gone"}
    _, sealed = seal_config("c1", {"auth": {"token": "new"}, "tables": []}, PATHS, stored, FakeBox())
    assert sealed == {"auth/token": "enc(c1:new)"}


def test_a_mask_with_nothing_stored_is_invalid() -> None:
    with pytest.raises(InvalidInput, match=r"config\.auth\.token"):
        seal_config("c1", {"auth": {"token": MASK}}, PATHS, {}, FakeBox())


def test_write_only_auth_is_sealed_and_kept() -> None:
    _, sealed = seal_config("c1", {}, PATHS, {}, FakeBox(), auth={"refresh_token": "r"})
    assert sealed == {"$auth": 'enc(c1:{"refresh_token": "r"})'}
    _, kept = seal_config("c1", {}, PATHS, sealed, FakeBox())
    assert kept == sealed
