"""The Basic-auth REQUEST authorizer on moto."""

from __future__ import annotations

import base64

import pytest

from sluice.accounts.api_keys import create_api_key
from tests.support.api_events import invoke as _unused  # noqa: F401 - keeps the support import path warm
from tests.support.api_events import sample_event

# The API and its storage on both DynamoDB backends (see tests/conftest.py).
pytestmark = pytest.mark.backends("moto", "dynamodb_local")


def authorize(header: str | None):
    from local.functions import load_module
    from local.lambda_context import LocalContext

    event = sample_event("authorizer")
    if header is None:
        event["headers"].pop("Authorization")
    else:
        event["headers"]["Authorization"] = header
    return load_module("functions/authorizer").lambda_handler(event, LocalContext(function_name="authorizer"))


def basic(key: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()


def test_valid_key_is_allowed_with_account_and_user_in_context(aws, table) -> None:
    key = create_api_key(table)
    result = authorize(basic(key.api_key, key.api_secret))
    assert result["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert result["context"] == {"account_id": key.account_id, "user_id": key.user_id}
    # One decision covers every route, so API Gateway may cache it.
    assert result["policyDocument"]["Statement"][0]["Resource"].endswith("/*/*")


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer abc", "Basic !!!", "Basic " + base64.b64encode(b"nocolon").decode()],
)
def test_malformed_credentials_are_unauthorized(aws, table, header) -> None:
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize(header)


def test_wrong_secret_and_unknown_key_are_unauthorized(aws, table) -> None:
    key = create_api_key(table)
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize(basic(key.api_key, key.api_secret + "x"))
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize(basic("unknown", key.api_secret))


def test_only_a_hash_of_the_secret_is_stored(aws, table) -> None:
    from sluice.storage.store import api_key_key

    key = create_api_key(table)
    item = table.get(api_key_key(key.api_key))
    assert key.api_secret not in str(item)
    assert len(item["secret_hash"]) == 64
