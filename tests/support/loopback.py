"""Switch the outbound guard's loopback allowance for a test (the setting is read once and cached)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sluice.settings import get_settings


def set_loopback(monkeypatch: pytest.MonkeyPatch, allowed: bool) -> None:
    if allowed:
        monkeypatch.setenv("SLUICE_ALLOW_LOOPBACK", "1")
    else:
        monkeypatch.delenv("SLUICE_ALLOW_LOOPBACK", raising=False)
    get_settings.cache_clear()


def loopback_allowed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Body of an autouse fixture: loopback allowed, as the local stack and tests run."""
    set_loopback(monkeypatch, True)
    yield
    get_settings.cache_clear()
