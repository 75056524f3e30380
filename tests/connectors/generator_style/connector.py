"""The older style: update() is a generator that yields each operation."""

from fivetran_connector_sdk import Connector
from fivetran_connector_sdk import Operations as op


def schema(configuration: dict):
    return [{"table": "items", "primary_key": ["id"]}]


def update(configuration: dict, state: dict):
    start = int(state.get("next", 1))
    for n in range(start, start + 5):
        yield op.upsert(table="items", data={"id": n, "name": f"item {n}"})
    yield op.checkpoint(state={"next": start + 5})


connector = Connector(update=update, schema=schema)
