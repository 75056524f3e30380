"""The API key command creates a key that the authorizer accepts."""

from __future__ import annotations

import json

from sluice.accounts.api_keys import authenticate
from sluice.accounts.cli import main
from tests.integration.test_authorizer import basic


def test_created_key_authenticates_and_joins_the_given_account(aws, table, capsys) -> None:
    assert main(["--account", "acct_42"]) == 0
    printed = json.loads(capsys.readouterr().out)
    caller = authenticate(table, basic(printed["api_key"], printed["api_secret"]))
    assert caller is not None
    assert caller.account_id == "acct_42"
    assert caller.user_id == printed["user_id"]
