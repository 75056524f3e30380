"""Everything that happens is an event on the Sluice bus."""

from __future__ import annotations

import json
from typing import Any

from sluice.aws import client
from sluice.settings import get_settings

SOURCE = "sluice"


class PublishFailed(Exception):
    pass


def publish(detail_type: str, detail: dict[str, Any]) -> None:
    response = client("events").put_events(
        Entries=[
            {
                "EventBusName": get_settings().event_bus_name,
                "Source": SOURCE,
                "DetailType": detail_type,
                "Detail": json.dumps(detail, separators=(",", ":"), default=str),
            }
        ]
    )
    if response.get("FailedEntryCount"):
        raise PublishFailed(f"{detail_type} was not accepted by the bus: {response.get('Entries')}")
