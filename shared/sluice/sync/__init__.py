"""Syncs: the engine that runs one, its events, and the sync/resync/state operations."""
