"""A group's destination as the API stores it: secret config fields sealed with KMS like a
connection's (masked as "******" in the stored and returned config, ciphertexts bound to the
destination, i.e. its group id, and the field), and the setup tests run when it is created."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from sluice.config_secrets import reveal, seal_config, secret_box
from sluice.destinations import DESTINATION_CONFIGS, DestinationConfig, PostgresDestinationConfig
from sluice.observability import logger
from sluice.sources.base import secret_destinations, secret_paths

if TYPE_CHECKING:
    from sluice.connections.model import SetupTestResult

# The KMS encryption context key of a destination's secrets (a connection's is `connection_id`).
DESTINATION_SCOPE = "destination_id"
SetupStatus = Literal["connected", "incomplete"]


def seal(
    destination_id: str, service: str, config: DestinationConfig
) -> tuple[dict[str, Any], dict[str, str]]:
    """The config to store and return (secrets masked) and the secrets' ciphertexts by JSON pointer."""
    paths = frozenset(secret_paths(DESTINATION_CONFIGS[service]))
    return seal_config(
        destination_id, config.model_dump(mode="json"), paths, {}, secret_box(), scope=DESTINATION_SCOPE
    )


def reseal(current: dict[str, Any], config: DestinationConfig) -> tuple[dict[str, Any], dict[str, str]]:
    """An updated config sealed like `seal`: secrets sent as "******" keep their stored ciphertext,
    except when a field that decides where they go (host, port) moves, which needs them again."""
    model = DESTINATION_CONFIGS[str(current["service"])]
    return seal_config(
        str(current["group_id"]),
        config.model_dump(mode="json"),
        frozenset(secret_paths(model)),
        dict(current.get("secrets") or {}),
        secret_box(),
        scope=DESTINATION_SCOPE,
        previous=dict(current["config"]),
        destinations=secret_destinations(model),
    )


def revealed_config(item: dict[str, Any], decrypt: Callable[..., dict[str, str]]) -> dict[str, Any]:
    """A stored destination's config with its secrets decrypted (for the sync worker's writer)."""
    ciphertexts = dict(item.get("secrets") or {})
    config = dict(item["config"])
    if not ciphertexts:
        return config
    return reveal(config, decrypt(str(item["group_id"]), ciphertexts, DESTINATION_SCOPE))


def run_setup_tests(config: DestinationConfig) -> list[SetupTestResult]:
    """The destination's setup tests (none for services that have none); a crash is one JOB_FAILED result."""
    from sluice.connections.model import SetupTestResult

    try:
        if isinstance(config, PostgresDestinationConfig):
            from sluice.destinations.postgres import setup_tests

            return setup_tests(config)
        return []
    except Exception as exc:  # a bug in a test must not take the API call down with it
        logger.exception("destination setup tests crashed")
        return [
            SetupTestResult(
                title="Running setup tests",
                status="JOB_FAILED",
                message=f"The setup tests could not run ({type(exc).__name__}); try again or contact support",
            )
        ]


def setup_status(results: list[SetupTestResult]) -> SetupStatus:
    return "incomplete" if any(r.status in ("FAILED", "JOB_FAILED") for r in results) else "connected"
