"""Accounts: what belongs to an account as a whole (today, the end of its trial)."""

from __future__ import annotations

from datetime import datetime

from sluice.storage.store import Store


def set_trial_end(store: Store, account_id: str, trial_ends_at: datetime) -> None:
    """After this moment the scheduler pauses the account's connections that have `pause_after_trial`."""
    store.set_trial_end(account_id, trial_ends_at)
