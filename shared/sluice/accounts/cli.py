"""Command line: create or revoke an API key in a Sluice table (on AWS, or on the local stack's moto).

    TABLE_NAME=<stack output TableName> python -m sluice.accounts.cli [--account ID] [--user ID]
    TABLE_NAME=<stack output TableName> python -m sluice.accounts.cli revoke <api key>

The secret is printed once and stored only as a salted hash. Use --account to add a key to an
existing account (it then sees that account's groups and connections). A revoked key is refused by
the authorizer; API Gateway may still accept it until its cached decision expires (5 minutes).
"""

from __future__ import annotations

import argparse
import json
import sys

from sluice.accounts.api_keys import create_api_key, revoke_api_key
from sluice.accounts.trials import set_trial_end
from sluice.storage.store import get_store
from sluice.timestamps import parse_timestamp

PROG = "python -m sluice.accounts.cli"


def revoke(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog=f"{PROG} revoke", description="Revoke an API key.")
    parser.add_argument("api_key", help="the API key (not its secret) to revoke")
    # A generated key is URL-safe base64 and may begin with "-": a lone argument is the key, never an option.
    if len(argv) == 1 and argv[0] not in ("-h", "--help"):
        argv = ["--", *argv]
    args = parser.parse_args(argv)
    if not revoke_api_key(get_store(), args.api_key):
        print(f"No API key '{args.api_key}'", file=sys.stderr)
        return 1
    print(json.dumps({"revoked": args.api_key}))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["revoke"]:
        return revoke(argv[1:])
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--account", help="account id to add the key to (default: a new account)")
    parser.add_argument("--user", help="user id the key acts as (default: a new user)")
    parser.add_argument(
        "--trial-ends",
        type=parse_timestamp,
        metavar="TIME",
        help="RFC 3339 time the account's trial ends; then connections with pause_after_trial are paused",
    )
    args = parser.parse_args(argv)
    store = get_store()
    key = create_api_key(store, account_id=args.account, user_id=args.user)
    if args.trial_ends is not None:
        set_trial_end(store, key.account_id, args.trial_ends)
    print(
        json.dumps(
            {
                "api_key": key.api_key,
                "api_secret": key.api_secret,
                "account_id": key.account_id,
                "user_id": key.user_id,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
