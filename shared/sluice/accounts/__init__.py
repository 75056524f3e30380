"""Accounts: API keys, trials and the key command."""
