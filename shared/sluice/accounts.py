"""Accounts: what belongs to an account as a whole (today, the end of its trial)."""

from __future__ import annotations

from datetime import datetime

from sluice.storage import TRIAL_PARTITION, Table, account_key, to_dynamo
from sluice.timestamps import to_wire


def set_trial_end(table: Table, account_id: str, trial_ends_at: datetime) -> None:
    """After this moment the scheduler pauses the account's connections that have `pause_after_trial`."""
    item = {
        **account_key(account_id),
        "type": "account",
        "id": account_id,
        "trial_ends_at": to_wire(trial_ends_at),
        "timer_pk": TRIAL_PARTITION,
        "timer_sk": f"{to_wire(trial_ends_at)}#{account_id}",
    }
    table._client.put_item(TableName=table.name, Item=to_dynamo(item))
