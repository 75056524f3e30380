"""Command line: create an API key in a Sluice table (on AWS, or on the local stack's moto).

    TABLE_NAME=<stack output TableName> python -m sluice.accounts.cli [--account ID] [--user ID]

The secret is printed once and stored only as a salted hash. Use --account to add a key to an
existing account (it then sees that account's groups and connections).
"""

from __future__ import annotations

import argparse
import json

from sluice.accounts.api_keys import create_api_key
from sluice.accounts.trials import set_trial_end
from sluice.storage.store import get_store
from sluice.timestamps import parse_timestamp


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sluice.accounts.cli", description=__doc__.splitlines()[0]
    )
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
