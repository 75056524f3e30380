"""Logging and metrics for every function: one Logger and one Metrics, named once."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

logger = Logger(service="sluice")
metrics = Metrics(namespace="Sluice", service="sluice")
