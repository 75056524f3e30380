"""Needs a package from requirements.txt (resolved when the package is deployed, not at sync)."""

import sluice_test_greeting
from fivetran_connector_sdk import Connector
from fivetran_connector_sdk import Operations as op


def schema(configuration: dict):
    return [{"table": "greetings", "primary_key": ["id"]}]


def update(configuration: dict, state: dict):
    op.upsert("greetings", {"id": 1, "text": sluice_test_greeting.greet("sluice")})
    op.checkpoint({"done": True})


connector = Connector(update=update, schema=schema)
