"""Reads what was announced on the Sluice event bus (an extra rule delivering everything to a queue)."""

from __future__ import annotations

import json
from typing import Any

import boto3


class BusTap:
    def __init__(self, bus_name: str, region: str = "us-east-1") -> None:
        self._sqs = boto3.client("sqs", region_name=region)
        events = boto3.client("events", region_name=region)
        self._queue = self._sqs.create_queue(QueueName="bus-tap")["QueueUrl"]
        arn = self._sqs.get_queue_attributes(QueueUrl=self._queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events.put_rule(
            Name="bus-tap", EventBusName=bus_name, EventPattern=json.dumps({"source": ["sluice"]})
        )
        events.put_targets(Rule="bus-tap", EventBusName=bus_name, Targets=[{"Id": "tap", "Arn": arn}])

    def drain(self) -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = []
        while True:
            messages = self._sqs.receive_message(QueueUrl=self._queue, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not messages:
                return seen
            for message in messages:
                seen.append(json.loads(message["Body"]))
                self._sqs.delete_message(QueueUrl=self._queue, ReceiptHandle=message["ReceiptHandle"])
