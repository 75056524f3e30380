"""Issue 9 item 12: an API key can be revoked, by the operator's command or by its own account's route,
and the authorizer then refuses it."""

from __future__ import annotations

import json

import pytest

from local.template import authorizer_cache_seconds
from sluice.accounts.api_keys import authenticate, create_api_key
from sluice.accounts.cli import main
from tests.integration.test_authorizer import authorize, basic
from tests.support.api_events import Account, call


def test_the_command_revokes_a_key_and_the_authorizer_refuses_it(aws, table, capsys) -> None:
    key = create_api_key(table)
    kept = create_api_key(table, account_id=key.account_id)
    allowed = authorize(basic(key.api_key, key.api_secret))
    assert allowed["policyDocument"]["Statement"][0]["Effect"] == "Allow"

    assert main(["revoke", key.api_key]) == 0
    assert json.loads(capsys.readouterr().out) == {"revoked": key.api_key}
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize(basic(key.api_key, key.api_secret))
    assert authenticate(table, basic(kept.api_key, kept.api_secret)) is not None  # only that key


def test_the_command_revokes_a_key_that_begins_with_a_dash(aws, table, capsys) -> None:
    # Generated keys are URL-safe base64, so one in 64 begins with "-": it is a key, not an option.
    key = create_api_key(table, api_key="-Ab3dEfGh1jK")
    assert main(["revoke", key.api_key]) == 0
    assert json.loads(capsys.readouterr().out) == {"revoked": key.api_key}
    assert authenticate(table, basic(key.api_key, key.api_secret)) is None


def test_the_command_says_when_there_is_no_such_key(aws, table, capsys) -> None:
    assert main(["revoke", "no-such-key"]) == 1
    assert "No API key 'no-such-key'" in capsys.readouterr().err


def test_the_route_revokes_a_key_of_the_callers_account(aws, table) -> None:
    key = create_api_key(table)
    caller = Account(account_id=key.account_id, user_id=key.user_id)
    reply = call("revoke_api_key", path=f"/v1/api-keys/{key.api_key}", account=caller)
    assert reply.status == 200, reply.body
    assert reply.body["code"] == "Success"
    assert "revoked" in reply.body["message"]
    assert authenticate(table, basic(key.api_key, key.api_secret)) is None
    # Revoked once: a second revocation finds nothing.
    again = call("revoke_api_key", path=f"/v1/api-keys/{key.api_key}", account=caller)
    assert again.status == 404
    assert again.body == {"code": "NotFound", "message": f"API key '{key.api_key}' doesn't exist"}


def test_another_account_cannot_revoke_a_key_nor_learn_that_it_exists(aws, table) -> None:
    victim = create_api_key(table)
    attacker = Account(account_id="acct_attacker", user_id="user_attacker")
    reply = call("revoke_api_key", path=f"/v1/api-keys/{victim.api_key}", account=attacker)
    unknown = call("revoke_api_key", path="/v1/api-keys/no-such-key", account=attacker)
    assert reply.status == unknown.status == 404
    assert reply.body["message"] == f"API key '{victim.api_key}' doesn't exist"
    assert authenticate(table, basic(victim.api_key, victim.api_secret)) is not None


def test_the_readme_states_the_authorizer_cache_time_the_template_sets() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    seconds = authorizer_cache_seconds()
    assert f"stops working within {seconds // 60} minutes" in readme


def test_the_route_states_the_same_cache_time(aws, table) -> None:
    key = create_api_key(table)
    caller = Account(account_id=key.account_id, user_id=key.user_id)
    reply = call("revoke_api_key", path=f"/v1/api-keys/{key.api_key}", account=caller)
    assert f"({authorizer_cache_seconds() // 60} minutes)" in reply.body["message"]
