"""Path aliases, 404/405 decisions and validation messages."""

from __future__ import annotations

import pytest

from sluice.api.request_models import CreateConnectionRequest
from sluice.api.routes import allowed_methods, canonical_path
from sluice.api.validation import parse
from sluice.errors import InvalidInput
from sluice.storage.store import decode_cursor, encode_cursor, to_dynamo


@pytest.mark.parametrize(
    ("path", "canonical", "aliased"),
    [
        ("/v1/connectors", "/v1/connections", True),
        ("/v1/connectors/abc/sync/", "/v1/connections/abc/sync", True),
        ("/v1/groups/g1/connectors/", "/v1/groups/g1/connections", True),
        ("/v1/groups/", "/v1/groups", False),
        ("/v1/destinations/connectors", "/v1/destinations/connectors", False),
    ],
)
def test_canonical_path(path: str, canonical: str, aliased: bool) -> None:
    assert canonical_path(path) == (canonical, aliased)


def test_allowed_methods_tell_405_from_404() -> None:
    assert allowed_methods("/v1/connectors/abc") == ["DELETE", "GET", "PATCH"]
    assert allowed_methods("/v1/nothing") == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"service": "rest_api"}, "Field 'group_id' is required"),
        (
            {"group_id": "g", "service": "rest_api", "sync_frequency": 2},
            "Invalid value for field 'sync_frequency'",
        ),
        ({"group_id": "g", "service": "rest_api", "extra": 1}, "Field 'extra' is not supported"),
        ({"group_id": None, "service": "rest_api"}, "Field 'group_id' is required"),
    ],
)
def test_validation_messages_name_the_field(body: dict, message: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse(CreateConnectionRequest, body)
    assert message in raised.value.message


def test_cursors_round_trip_and_refuse_other_partitions() -> None:
    key = to_dynamo({"pk": "CONN#a", "sk": "CONN", "gsi1pk": "ACCT#1#CONN", "gsi1sk": "g#s"})
    cursor = encode_cursor(key)
    assert cursor is not None
    assert decode_cursor(cursor, "ACCT#1#CONN") == key
    with pytest.raises(InvalidInput):
        decode_cursor(cursor, "ACCT#2#CONN")
    with pytest.raises(InvalidInput):
        decode_cursor("not base64 !", "ACCT#1#CONN")
