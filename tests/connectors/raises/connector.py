"""Checkpoints after three rows, emits two more, then fails."""

from fivetran_connector_sdk import Connector
from fivetran_connector_sdk import Logging as log
from fivetran_connector_sdk import Operations as op


def schema(configuration: dict):
    return [{"table": "items", "primary_key": ["id"]}]


def update(configuration: dict, state: dict):
    for n in (1, 2, 3):
        op.upsert("items", {"id": n})
    op.checkpoint({"next": 4})
    for n in (4, 5):
        op.upsert("items", {"id": n})
    log.severe("the source API refused the next page")
    raise RuntimeError("the source API said no")


connector = Connector(update=update, schema=schema)
