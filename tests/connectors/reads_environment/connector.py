"""Lands the names of the environment variables it can see (the sync keeps AWS ones from it)."""

import os

from fivetran_connector_sdk import Connector
from fivetran_connector_sdk import Operations as op


def update(configuration: dict, state: dict):
    for name in sorted(os.environ):
        op.upsert("variables", {"name": name})


connector = Connector(update=update)
