"""Accounts: what belongs to an account as a whole (today, the end of its trial)."""

from __future__ import annotations

from datetime import datetime

from sluice.storage.store import TRIAL_PARTITION, Store, account_key
from sluice.timestamps import format_timestamp


def set_trial_end(store: Store, account_id: str, trial_ends_at: datetime) -> None:
    """After this moment the scheduler pauses the account's connections that have `pause_after_trial`."""
    item = {
        **account_key(account_id),
        "type": "account",
        "id": account_id,
        "trial_ends_at": format_timestamp(trial_ends_at),
        "timer_pk": TRIAL_PARTITION,
        "timer_sk": f"{format_timestamp(trial_ends_at)}#{account_id}",
    }
    store.put(item)


def mark_trial_processed(store: Store, account_id: str, now: datetime) -> None:
    """The trial's end was handled: drop the account from the timers index."""
    store.update(
        account_key(account_id),
        "SET trial_processed_at = :now REMOVE timer_pk, timer_sk",
        {":now": format_timestamp(now)},
    )
